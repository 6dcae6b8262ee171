"""The features worker: publisher, processor, consumer and topic keeper wired together (one per process).

The consumer is the engine ``settings.features_engine`` names: ``consumer.SalesConsumer`` (aiokafka, default) or
``faust_engine.FaustSalesConsumer`` (faust-streaming); both feed the same ``Processor``.

Readiness = Redis answers, the broker answers and every contract topic exists. The keeper re-creates missing
topics (a memory-only broker loses them on restart); until then readiness is false and the consumer waits
(it never crash-loops). Redis data is never touched by a broker restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.features.consumer import SalesConsumer
from services.features.month_gate import MonthClosePolicy
from services.features.processor import Processor
from shared.bus import AsyncPublisher, KafkaRecord, ensure_topics, missing_topics, topic_specs
from shared.bus.security import kafka_security
from shared.bus.topics import SALES_MONTHLY
from shared.config import Settings
from shared.feature_store.layout import Layout
from shared.features import EligibilityRule, stored_feature_sets
from shared.logging import get_logger
from shared.redis_client import settings_client
from shared.tasks import cancel_all

if TYPE_CHECKING:
    from services.features.faust_engine import FaustSalesConsumer

log = get_logger("stableseg.features.worker")
GROUP_ID = "stableseg-features"
logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python (topic checks) logs every connection at INFO


class FeaturesWorker:
    """``await start()`` / ``await stop()``; ``ready()`` for /readyz."""

    def __init__(self, settings: Settings, metrics: Any = None, *, keeper_interval: float = 5.0) -> None:
        self.settings = settings
        self.specs = topic_specs(settings)
        self.keeper_interval = keeper_interval
        self.redis = settings_client(settings, socket_timeout=30, socket_connect_timeout=5)
        self.security = kafka_security(settings, "aiokafka")
        self.admin_security = kafka_security(settings, "kafka-python")
        self.publisher = AsyncPublisher(settings.kafka_bootstrap, request_timeout_ms=15_000, **self.security)
        self.publisher_started = False
        self.topics_ok = False
        self._had_topics = False
        rule = EligibilityRule.from_settings(settings)
        feature_sets = stored_feature_sets(settings.feature_store_sets, settings.feature_set)
        self.processor = Processor(self.redis, self.publish, feature_sets, rule, SALES_MONTHLY, metrics=metrics,
                                   layout=Layout.from_settings(settings),
                                   month_close=MonthClosePolicy.from_settings(settings))
        self.consumer: SalesConsumer | FaustSalesConsumer
        if settings.features_engine == "faust":  # one group, one engine: faust's assignor differs from aiokafka's
            from services.features.faust_engine import FaustSalesConsumer  # faust only imported when chosen

            self.consumer = FaustSalesConsumer(settings.kafka_bootstrap, SALES_MONTHLY, GROUP_ID, self.processor,
                                               max_records=settings.features_batch_records,
                                               datadir=settings.data_dir / "faust", metrics=metrics,
                                               security=kafka_security(settings, "faust"))
        else:
            self.consumer = SalesConsumer(settings.kafka_bootstrap, SALES_MONTHLY, GROUP_ID, self.processor,
                                          max_records=settings.features_batch_records, metrics=metrics,
                                          security=self.security)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._keep_topics(), name="features-topics"),
                       asyncio.create_task(self._consume(), name="features-consumer")]

    async def stop(self) -> None:
        self.consumer.stop()
        await cancel_all(self._tasks)
        if self.publisher_started:
            await self.publisher.stop()
        self.redis.close()

    async def publish(self, records: Sequence[KafkaRecord]) -> None:
        """Send and wait for every acknowledgement; retried while the broker is away (nothing advances)."""
        if not records:
            return
        retrying = AsyncRetrying(retry=retry_if_exception_type(Exception), wait=wait_exponential(0.2, max=5),
                                 before_sleep=lambda s: log.warning("features.publish_retry", attempt=s.attempt_number,
                                 error=repr(s.outcome.exception()) if s.outcome else None))
        async for attempt in retrying:
            with attempt:
                if self.processor.stopping and attempt.retry_state.attempt_number > 1:
                    raise asyncio.CancelledError("stopping while the broker is unavailable")
                if not self.publisher_started:
                    await self.publisher.start()
                    self.publisher_started = True
                await self.publisher.send_batch(records)

    async def _consume(self) -> None:
        while not self.topics_ok:  # first start: the topics must exist before we subscribe
            await asyncio.sleep(0.2)
        await self.consumer.run()

    async def _keep_topics(self) -> None:
        once = stop_after_attempt(1)
        while True:
            try:
                missing = await asyncio.to_thread(missing_topics.retry_with(stop=once), self.settings.kafka_bootstrap,
                                                  self.specs, self.admin_security)
                if missing:
                    self.topics_ok = False
                    log.warning("features.topics_missing", topics=missing)
                    await asyncio.to_thread(ensure_topics.retry_with(stop=once), self.settings.kafka_bootstrap,
                                            self.specs, security=self.admin_security)
                    missing = await asyncio.to_thread(missing_topics.retry_with(stop=once),
                                                      self.settings.kafka_bootstrap, self.specs,
                                                      self.admin_security)
                if missing == [] and not self.topics_ok and self._had_topics:
                    log.warning("features.topics_back", action="restarting the consumer")
                    self.consumer.restart()
                self.topics_ok = not missing
                self._had_topics = self._had_topics or self.topics_ok
            except Exception as exc:  # broker down: not ready, try again later
                self.topics_ok = False
                log.warning("features.broker_unavailable", error=repr(exc))
            await asyncio.sleep(self.keeper_interval if self.topics_ok else 1.0)

    async def redis_ready(self) -> bool:
        return bool(await asyncio.to_thread(self.redis.ping))

    def broker_ready(self) -> bool:
        return self.topics_ok

    def consumer_ready(self) -> bool:
        """Joined the consumer group (readiness waits for the first assignment)."""
        return self.consumer.joined
