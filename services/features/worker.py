"""The features worker: processor, consumer and Kafka link wired together (one per process).

The consumer is the engine ``settings.features_engine`` names: ``consumer.SalesConsumer`` (aiokafka, default) or
``faust_engine.FaustSalesConsumer`` (faust-streaming); both feed the same ``Processor``. Publishing and the topic
keeper are :class:`shared.bus.link.BrokerLink`'s (a producer-only link).

Readiness = Redis answers, the broker answers and every contract topic exists. The keeper re-creates missing
topics (a memory-only broker loses them on restart) and then restarts the consumer; until then readiness is false
and the consumer waits (it never crash-loops). Redis data is never touched by a broker restart.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.features.consumer import SalesConsumer
from services.features.engine import ConsumerTimings
from services.features.month_gate import MonthClosePolicy
from services.features.processor import Processor, redis_backoff
from shared.bus import AsyncPublisher, KafkaRecord
from shared.bus.link import BrokerLink, GroupTimeouts
from shared.bus.security import kafka_security
from shared.bus.topics import SALES_MONTHLY
from shared.config import Settings
from shared.feature_store.layout import Layout
from shared.features import EligibilityRule, stored_feature_sets
from shared.http import freeze_heap
from shared.logging import get_logger
from shared.redis_client import settings_client
from shared.tasks import cancel_all

if TYPE_CHECKING:
    from services.features.faust_engine import FaustSalesConsumer

log = get_logger("stableseg.features.worker")
GROUP_ID = "stableseg-features"
logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python (topic checks) logs every connection at INFO


def tune_collector(threshold: int) -> None:
    """Freeze the start-up heap (``shared.http.freeze_heap``) and make young collections rarer: a batch allocates
    a few container objects per record, and each young collection walks every one still alive."""
    objects = freeze_heap()
    if threshold:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])
    log.info("features.collector_tuned", frozen=objects, threshold=gc.get_threshold())


class FeaturesWorker:
    """``await start()`` / ``await stop()``; ``ready()`` for /readyz."""

    def __init__(self, settings: Settings, metrics: Any = None, *, keeper_interval: float | None = None) -> None:
        self.settings = settings
        self.redis = settings_client(settings, socket_timeout=settings.features_redis_socket_timeout_seconds,
                                     socket_connect_timeout=settings.features_redis_connect_timeout_seconds)
        publisher = AsyncPublisher(settings.kafka_bootstrap,
                                   request_timeout_ms=settings.features_producer_request_timeout_ms,
                                   **kafka_security(settings, "aiokafka"))
        self.link = BrokerLink(settings, "features", publisher=publisher, check_interval=keeper_interval,
                               on_topics_back=self._topics_back)
        rule = EligibilityRule.from_settings(settings)
        feature_sets = stored_feature_sets(settings.feature_store_sets, settings.feature_set)
        self.processor = Processor(self.redis, self.publish, feature_sets, rule, SALES_MONTHLY, metrics=metrics,
                                   layout=Layout.from_settings(settings),
                                   month_close=MonthClosePolicy.from_settings(settings),
                                   redis_wait=redis_backoff(settings))
        self.consumer = self._engine(settings, metrics)
        self._tasks: list[asyncio.Task[None]] = []

    def _engine(self, settings: Settings, metrics: Any) -> SalesConsumer | FaustSalesConsumer:
        """The consumer ``settings.features_engine`` names (one group, one engine: faust's assignor differs)."""
        options: dict[str, Any] = {"max_records": settings.features_batch_records, "metrics": metrics,
                                   "timeouts": GroupTimeouts.from_settings(settings),
                                   "timings": ConsumerTimings.from_settings(settings)}
        if settings.features_engine == "faust":
            from services.features.faust_engine import FaustSalesConsumer  # faust only imported when chosen

            return FaustSalesConsumer(settings.kafka_bootstrap, SALES_MONTHLY, GROUP_ID, self.processor,
                                      datadir=settings.data_dir / "faust", security=kafka_security(settings, "faust"),
                                      **options)
        return SalesConsumer(settings.kafka_bootstrap, SALES_MONTHLY, GROUP_ID, self.processor,
                             security=kafka_security(settings, "aiokafka"), **options)

    async def start(self) -> None:
        tune_collector(self.settings.features_gc_threshold)
        await self.link.start()
        self._tasks = [asyncio.create_task(self._consume(), name="features-consumer")]

    async def stop(self) -> None:
        self.consumer.stop()
        await cancel_all(self._tasks)
        await self.link.stop()
        self.redis.close()

    async def publish(self, records: Sequence[KafkaRecord]) -> None:
        """Send and wait for every acknowledgement; retried while the broker is away (nothing advances) until the
        worker stops."""
        try:
            await self.link.send(records, None, abandon=lambda: self.processor.stopping)
        except Exception as exc:  # only given up when stopping
            raise asyncio.CancelledError("stopping while the broker is unavailable") from exc

    async def _consume(self) -> None:
        await self.link.connected.wait()  # first start: the topics must exist before we subscribe
        await self.consumer.run()

    def _topics_back(self) -> None:
        log.warning("features.topics_back", action="restarting the consumer")
        self.consumer.restart()

    async def redis_ready(self) -> bool:
        return bool(await asyncio.to_thread(self.redis.ping))

    def broker_ready(self) -> bool:
        return self.link.ready

    def consumer_ready(self) -> bool:
        """Joined the consumer group (readiness waits for the first assignment)."""
        return self.consumer.joined
