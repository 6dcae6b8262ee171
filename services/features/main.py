"""``stableseg serve features``: consume ``sales.monthly`` into the Redis feature store (see ``worker.py``).

Design (refined from the faust plan, see ``consumer.py``): the consumer is aiokafka's group consumer used
directly, because faust's per-event machinery costs ~90 us of CPU per record on the project machine (a no-op
faust agent with raw serializers reads ~11,400 records per CPU-second; ``bench/bench_stream.py --faust-baseline``
measures it) while the target is 20,000 records/s, and because storing offsets outside Kafka needs the seek to
happen inside the rebalance callback, which aiokafka's ``ConsumerRebalanceListener`` gives directly.
``STABLESEG_FEATURES_ENGINE=faust`` runs the same processor under a faust-streaming app instead
(``faust_engine.py``): correct (the same service tests pass), but ~6x the worker CPU per record (~9,800 against
~60,000 records per CPU-second; 9,100 against 35,900 records/s end to end on 5M records), below the speed bar on
this machine; the default stays ``aiokafka``.
"""

from __future__ import annotations

from services.features.app import create_app
from shared.config import Settings
from shared.features import stored_feature_sets
from shared.http import serve


def run(settings: Settings) -> None:
    """Serve on ``settings.bind_host:settings.features_port`` and consume until SIGTERM/SIGINT."""
    try:
        stored_feature_sets(settings.feature_store_sets, settings.feature_set)  # a bad list fails before serving
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    serve(create_app(settings), settings, settings.features_port)
