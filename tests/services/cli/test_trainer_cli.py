"""``stableseg retrain`` against the real broker: the request event it writes, and --wait's clear timeout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from services.cli.main import app
from shared.bus import decode_event
from shared.bus.topics import TRAINING_REQUESTS
from shared.config import get_settings

pytestmark = pytest.mark.xdist_group("trainer")


@pytest.fixture
def cli_env(fresh_kafka_bootstrap: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("STABLESEG_KAFKA_BOOTSTRAP", fresh_kafka_bootstrap)
    monkeypatch.setenv("STABLESEG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield fresh_kafka_bootstrap
    get_settings.cache_clear()


def _requests(bootstrap: str) -> list[dict]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, consumer_timeout_ms=3000)
    tp = TopicPartition(TRAINING_REQUESTS, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    try:
        return [decode_event(m.value, m.headers, m.key).data for m in consumer]
    finally:
        consumer.close()


def test_retrain_writes_one_training_request(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["retrain", "--reason", "new promo calendar", "--requested-by", "ana@hq"])
    assert result.exit_code == 0, result.output
    assert "retrain requested by ana@hq" in result.output
    assert _requests(cli_env) == [{"reason": "new promo calendar", "requested_by": "ana@hq"}]


def test_retrain_wait_times_out_clearly_without_a_trainer(cli_env: str) -> None:
    result = CliRunner().invoke(app, ["retrain", "--wait", "--timeout", "2"])
    assert result.exit_code == 2, result.output
    assert "no new model version was published within 2 s" in result.output
    assert len(_requests(cli_env)) == 1  # the request itself was still made


def test_retrain_reports_an_unreachable_broker(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from shared.stack import free_port

    monkeypatch.setenv("STABLESEG_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("STABLESEG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["retrain", "--broker-wait", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "cannot reach the Kafka broker" in result.output
