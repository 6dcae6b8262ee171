"""``stableseg serve features``: consume ``sales.monthly`` into the Redis feature store (see ``worker.py``).

The consumer is aiokafka's group consumer used directly (``consumer.py``): faust's per-event machinery costs more
CPU per record than the stream's speed bar allows on the project machine, and storing offsets outside Kafka needs
the seek to happen inside the rebalance callback, which aiokafka's ``ConsumerRebalanceListener`` gives directly.
``STABLESEG_FEATURES_ENGINE=faust`` runs the same processor under a faust-streaming app instead
(``faust_engine.py``): correct (the same service tests pass) but several times the worker CPU per record, so the
default stays ``aiokafka``. The README's features-engine table has the measured figures and the command.
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
