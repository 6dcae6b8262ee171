"""``shared.bus.link.BrokerLink`` on a real, memory-only broker: the keeper re-creates the topics a restart lost and
calls ``on_topics_back``; ``send(..., None)`` waits for the broker however long it is away, ``abandon`` ends that."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.bus import AsyncPublisher, KafkaRecord, missing_topics, topic_specs
from shared.bus.link import BrokerLink, GroupTimeouts
from shared.bus.topics import SALES_MONTHLY
from shared.config import Settings
from shared.stack import EmbeddedBroker, free_port

RECORD = KafkaRecord(SALES_MONTHLY, b"S1", b"{}", [])


async def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker", die_with_parent=True)
    broker.start()
    yield broker
    broker.stop()


def _link(broker: EmbeddedBroker, back: list[bool], check_interval: float = 30.0) -> BrokerLink:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    publisher = AsyncPublisher(broker.bootstrap, request_timeout_ms=2000)
    link = BrokerLink(settings, "test", publisher=publisher, check_interval=check_interval, recheck_interval=0.2,
                      on_topics_back=lambda: back.append(link.ready))
    return link


def test_a_broker_restart_loses_the_topics_the_keeper_recreates_them_and_a_send_waits(broker: EmbeddedBroker
                                                                                       ) -> None:
    back: list[bool] = []
    link = _link(broker, back, check_interval=0.3)

    async def scenario() -> None:
        await link.start()
        await asyncio.wait_for(link.connected.wait(), 30)
        await link.send([RECORD])
        assert link.ready and back == []
        await asyncio.to_thread(broker.stop)
        await _until(lambda: not link.ready, 30, "readiness to drop")
        sending = asyncio.create_task(link.send([RECORD], None))  # the broker is away: retried until it is back
        await asyncio.sleep(3)
        assert not sending.done()
        await asyncio.to_thread(broker.start)  # empty: every topic is gone
        await _until(lambda: back, 30, "on_topics_back")
        await asyncio.wait_for(sending, 30)
        assert await asyncio.to_thread(missing_topics, broker.bootstrap, topic_specs(Settings())) == []
        await link.stop()

    asyncio.run(scenario())  # (the restarted broker dies with the executor thread that started it: checks inside)
    assert back[0] is True  # called once every topic is there again (ready)


def test_abandon_ends_a_send_that_waits_for_the_broker(broker: EmbeddedBroker) -> None:
    link = _link(broker, [])

    async def scenario() -> float:
        await link.start()
        await asyncio.wait_for(link.connected.wait(), 30)
        await asyncio.to_thread(broker.stop)
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            await asyncio.wait_for(link.send([RECORD], None, abandon=lambda: True), 30)
        assert not isinstance(raised.value, TimeoutError)  # the send's own failure, not our bound
        await link.stop()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 15


def test_group_timeouts_come_from_settings_for_both_clients() -> None:
    timeouts = GroupTimeouts.from_settings(Settings(kafka_session_timeout_ms=12_000, kafka_heartbeat_interval_ms=4000,
                                                    kafka_rebalance_timeout_ms=30_000))
    assert timeouts.aiokafka() == {"session_timeout_ms": 12_000, "heartbeat_interval_ms": 4000,
                                   "rebalance_timeout_ms": 30_000}
    assert timeouts.faust() == {"broker_session_timeout": 12.0, "broker_heartbeat_interval": 4.0,
                                "broker_rebalance_timeout": 30.0}
    assert GroupTimeouts() == GroupTimeouts.from_settings(Settings())
