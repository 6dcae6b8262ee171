"""``stableseg features rebuild``: wipe the store and replay ``sales.monthly`` from the earliest offsets.

Runs in the calling process with a standalone consumer (no group) until it reaches the high watermarks, through
the same ``Processor`` as the service, so the result equals what the service builds: every key and field of the
new epoch is identical to a store built by live consumption of the same log. Safe while workers run: the wipe
switches epochs atomically, workers notice on their next write, re-seek, and the APPLY script's offset guard lets
each record through exactly once, whoever reads it first. Quiet by default: events were published the first time;
``publish=True`` re-emits ``features.updated``/``months.closed``/``sales.rejected``. It is also the migration from
an older layout of the store: the wipe deletes every key of the old epochs and records the current layout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.features.fetch import lean_options
from services.features.month_gate import MonthClosePolicy
from services.features.processor import Processor, redis_backoff
from shared.bus import AsyncPublisher, KafkaRecord
from shared.bus.security import kafka_security
from shared.bus.topics import SALES_MONTHLY
from shared.config import Settings
from shared.feature_store import FeatureStore, Layout
from shared.features import EligibilityRule, stored_feature_sets
from shared.progress import Progress, or_silent
from shared.redis_client import settings_client


@dataclass(frozen=True)
class RebuildSummary:
    epoch: int
    records: int
    applied: int
    rejected: int
    shops: int
    latest_month: str | None


async def rebuild_async(settings: Settings, publish: bool = False, progress: Progress | None = None,
                        max_records: int = 5000) -> RebuildSummary:
    client = settings_client(settings, socket_timeout=settings.features_rebuild_redis_timeout_seconds)
    layout = Layout.from_settings(settings)
    store = FeatureStore(client=client, cluster=settings.redis_cluster, groups=layout.groups)
    security = kafka_security(settings, "aiokafka")
    publisher = AsyncPublisher(settings.kafka_bootstrap, **security) if publish else None

    async def send(records: Sequence[KafkaRecord]) -> None:
        if publisher is not None and records:
            await publisher.send_batch(records)

    rule = EligibilityRule.from_settings(settings)
    feature_sets = stored_feature_sets(settings.feature_store_sets, settings.feature_set)
    quiet = MonthClosePolicy.from_settings(settings.model_copy(update={"month_close_quiet_seconds": 0.0}))
    processor = Processor(client, send, feature_sets, rule, SALES_MONTHLY, layout=layout, month_close=quiet,
                          redis_wait=redis_backoff(settings))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                                client_id="stableseg-rebuild", max_poll_records=max_records,
                                max_partition_fetch_bytes=4 * 1024 * 1024, **lean_options(), **security)
    if publisher is not None:
        await publisher.start()
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(SALES_MONTHLY) or set()
        if not partitions:
            raise RuntimeError(f"topic {SALES_MONTHLY!r} does not exist on {settings.kafka_bootstrap}")
        tps = [TopicPartition(SALES_MONTHLY, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        epoch = await asyncio.to_thread(store.wipe)
        processor.epoch = epoch
        for tp in tps:
            processor.floors[tp.partition] = begin[tp]
            consumer.seek(tp, begin[tp])
        done, applied, rejected = await _replay(consumer, processor, begin, or_silent(progress), max_records)
        while await processor.recompute_pending():
            pass
        await processor.flush_outbox()  # caught up now: the complete months close
        return RebuildSummary(epoch, done, applied, rejected, store.shop_count(), store.latest_month())
    finally:
        await consumer.stop()
        if publisher is not None:
            await publisher.stop()
        client.close()


async def _replay(consumer: AIOKafkaConsumer, processor: Processor, begin: dict[TopicPartition, int],
                  progress: Progress, max_records: int) -> tuple[int, int, int]:
    """Apply every record from ``begin`` until each position reaches the high watermark of the fetch responses;
    returns the records read, applied and rejected."""
    tps = list(begin)
    done = applied = rejected = 0
    pending = set(tps)
    while pending:
        fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=max_records)
        batches = {tp.partition: records for tp, records in fetched.items() if records}
        done += sum(len(records) for records in batches.values())
        if batches:
            outcome = await processor.handle(batches)
            applied, rejected = applied + outcome.applied, rejected + outcome.rejected
            if outcome.seeks or outcome.reseek_all:
                raise RuntimeError("rebuild: the store changed underneath (another wipe?); run it again")
        highs = {tp: consumer.highwater(tp) for tp in tps}
        processor.highwaters.update({tp.partition: h for tp, h in highs.items() if h is not None})
        for tp in list(pending):
            if highs[tp] is not None and await consumer.position(tp) >= highs[tp]:
                pending.discard(tp)
        progress("rebuild", done, sum((highs[tp] or 0) - begin[tp] for tp in tps))
    return done, applied, rejected


def rebuild(settings: Settings, publish: bool = False, progress: Progress | None = None) -> RebuildSummary:
    return asyncio.run(rebuild_async(settings, publish=publish, progress=progress))
