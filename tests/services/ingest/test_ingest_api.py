"""POST /v1/sales against a REAL broker (tansu): what lands in which topic, errors, broker outages, probes."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from services.ingest.app import create_app
from shared.bus import decode_event
from shared.bus.topics import SALES_MONTHLY, SALES_REJECTED
from shared.config import Settings
from shared.stack import EmbeddedBroker, free_port
from tests.services.ingest.bodies import UNUSABLE_BODIES, UNUSABLE_BODY_FIELDS

pytestmark = pytest.mark.xdist_group("ingest")
MAX_RECORDS = 200


def wait_ready(client: TestClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, f"not ready: {client.get('/readyz').json()}"
        time.sleep(0.1)


def read_topic(bootstrap: str, topic: str, prefix: str, expect: int, timeout: float = 20.0) -> list:
    """Every record of ``topic`` whose key starts with ``prefix``: waits for ``expect``, then one idle second more
    so that extra records would be seen too."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        found, deadline, idle_since = [], time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            batch = [m for ms in consumer.poll(timeout_ms=200).values() for m in ms]
            found += [m for m in batch if (m.key or b"").decode().startswith(prefix)]
            if len(found) >= expect:
                idle_since = idle_since if not batch and idle_since else time.monotonic()
                if time.monotonic() - idle_since > 1.0:
                    break
        return found
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path_factory.mktemp("ingest-broker"), die_with_parent=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def client(broker: EmbeddedBroker) -> Iterator[TestClient]:
    settings = Settings(kafka_bootstrap=broker.bootstrap, ingest_max_records=MAX_RECORDS)
    with TestClient(create_app(settings, topic_check_interval=0.5), raise_server_exceptions=False) as c:
        wait_ready(c)
        yield c


@pytest.fixture
def shop() -> str:
    """A shop-id prefix of this test only (the module shares one broker)."""
    return f"T{uuid.uuid4().hex[:8]}-"


def records(shop: str, n: int) -> list[dict]:
    return [
        {"shop_id": f"{shop}{i % 3}", "product_id": f"P{i}", "year": 2023, "month": 1 + i % 12, "sales_qty": i * 1.5}
        for i in range(n)
    ]


def test_valid_batch_lands_in_sales_monthly_as_cloudevents(client: TestClient, broker: EmbeddedBroker, shop: str):
    batch = [*records(shop, 5), {"shop_id": f"{shop}0", "product_id": 42, "year": 2024, "month": 12, "sales_qty": 0}]
    response = client.post("/v1/sales", json=batch)
    assert response.status_code == 200
    assert response.json() == {"accepted": 6, "rejected": 0, "errors": []}

    landed = read_topic(broker.bootstrap, SALES_MONTHLY, shop, 6)
    assert len(landed) == 6
    events = [decode_event(m.value, m.headers, m.key) for m in landed]
    expected = [{**r, "product_id": str(r["product_id"]), "sales_qty": float(r["sales_qty"])} for r in batch]
    assert sorted(orjson.dumps(e.data, option=orjson.OPT_SORT_KEYS) for e in events) == sorted(
        orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in expected
    )
    for message, event in zip(landed, events, strict=True):
        headers = dict(message.headers)
        assert headers["ce_specversion"] == b"1.0" and headers["content-type"] == b"application/json"
        assert event.type == "io.stableseg.sales.monthly.v1" and event.source == "/stableseg/ingest"
        assert event.time is not None and message.key.decode() == event.data["shop_id"]
    assert len({e.id for e in events}) == 6
    partitions = {}
    for m in landed:
        partitions.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in partitions.values())  # one shop, one partition: per-key order holds


def test_mixed_batch_counts_and_rejected_topic(client: TestClient, broker: EmbeddedBroker, shop: str) -> None:
    good = records(shop, 4)
    batch = [
        good[0],
        {**good[1], "month": 13},
        good[2],
        {"shop_id": f"{shop}x", "year": 2023},
        good[3],
        {**good[1], "sales_qty": -2},
    ]
    body = client.post("/v1/sales", json=batch).json()
    assert body["accepted"] == 3 and body["rejected"] == 3
    assert [e["index"] for e in body["errors"]] == [1, 3, 5]
    assert [e["field"] for e in body["errors"][0]["errors"]] == ["month"]
    assert {e["field"] for e in body["errors"][1]["errors"]} == {"product_id", "month", "sales_qty"}
    assert [e["field"] for e in body["errors"][2]["errors"]] == ["sales_qty"]

    assert len(read_topic(broker.bootstrap, SALES_MONTHLY, shop, 3)) == 3
    rejected = read_topic(broker.bootstrap, SALES_REJECTED, shop, 3)
    values = sorted((decode_event(m.value, m.headers, m.key).data for m in rejected), key=lambda v: str(v["record"]))
    assert len(values) == 3
    assert all(v["source"] == "ingest" and v["errors"] for v in values)
    assert {orjson.dumps(v["record"], option=orjson.OPT_SORT_KEYS) for v in values} == {
        orjson.dumps(batch[i], option=orjson.OPT_SORT_KEYS) for i in (1, 3, 5)
    }
    assert {m.key.decode() for m in rejected} == {f"{shop}1", f"{shop}x"}


def test_ndjson_body(client: TestClient, broker: EmbeddedBroker, shop: str) -> None:
    lines = [orjson.dumps(r) for r in records(shop, 3)] + [b"", b'{"shop_id": "oops"}', b""]
    response = client.post("/v1/sales", content=b"\n".join(lines), headers={"Content-Type": "application/x-ndjson"})
    assert response.json()["accepted"] == 3 and response.json()["errors"][0]["index"] == 3
    assert len(read_topic(broker.bootstrap, SALES_MONTHLY, shop, 3)) == 3


@pytest.mark.parametrize(
    ("record", "fields"),
    [
        ({"product_id": "P", "year": 2020, "month": 1, "sales_qty": 1}, {"shop_id"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 0, "sales_qty": 1}, {"month"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 13, "sales_qty": 1}, {"month"}),
        ({"shop_id": "S", "product_id": "P", "year": 1899, "month": 1, "sales_qty": 1}, {"year"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 1, "sales_qty": -0.5}, {"sales_qty"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 1, "sales_qty": "NaN"}, {"sales_qty"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 1, "sales_qty": "inf"}, {"sales_qty"}),
        ({"shop_id": "S", "product_id": "P", "year": "2020", "month": 1, "sales_qty": 1}, {"year"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 1.5, "sales_qty": 1}, {"month"}),
        ({"shop_id": True, "product_id": "P", "year": 2020, "month": 1, "sales_qty": 1}, {"shop_id"}),
        ({"shop_id": "", "product_id": ["P"], "year": 2020, "month": 1, "sales_qty": 1}, {"shop_id", "product_id"}),
        ({"shop_id": "S" * 65, "product_id": "P", "year": 2020, "month": 1, "sales_qty": 1}, {"shop_id"}),
        ({"shop_id": "S", "product_id": "P", "year": 2020, "month": 1, "sales_qty": None}, {"sales_qty"}),
    ],
)
def test_invalid_records_are_rejected_with_the_field_named(client: TestClient, record: dict, fields: set) -> None:
    response = client.post("/v1/sales", json=[record])
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 0 and body["rejected"] == 1
    assert {e["field"] for e in body["errors"][0]["errors"]} == fields
    assert all(e["message"] for e in body["errors"][0]["errors"])


def test_non_object_records_are_rejected(client: TestClient) -> None:
    body = client.post("/v1/sales", json=[1, "x", None, [1]]).json()
    assert body["rejected"] == 4 and all(e["errors"][0]["field"] == "record" for e in body["errors"])


@pytest.mark.parametrize(
    UNUSABLE_BODY_FIELDS,
    [
        *UNUSABLE_BODIES,
        pytest.param(orjson.dumps([{"shop_id": "S"}] * (MAX_RECORDS + 1)), "application/json", 413,
                     f"limit is {MAX_RECORDS}", id="records-limit"),
        pytest.param(b"[" + b" " * (10 * 1024 * 1024) + b"]", "application/json", 413, "limit is 8388608 bytes",
                     id="bytes-limit"),
    ],
)
def test_unusable_bodies_get_a_clear_4xx(
    client: TestClient, body: bytes, content_type: str, status: int, needle: str
) -> None:
    response = client.post("/v1/sales", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert needle in response.json()["detail"]


def test_ten_megabytes_streamed_without_length_is_refused(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(160):
            yield orjson.dumps({"shop_id": "S", "pad": "x" * 65_000}) + b","
        yield b"{}]"

    response = client.post("/v1/sales", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "8388608 bytes" in response.json()["detail"]


def test_metrics_and_probes(client: TestClient, shop: str) -> None:
    def counter(outcome: str) -> float:
        prefix = f'stableseg_ingest_records_total{{outcome="{outcome}"}} '
        line = next(row for row in client.get("/metrics").text.splitlines() if row.startswith(prefix))
        return float(line.removeprefix(prefix))

    before = counter("accepted"), counter("rejected")
    client.post("/v1/sales", json=[*records(shop, 2), {"shop_id": "bad"}])
    assert (counter("accepted") - before[0], counter("rejected") - before[1]) == (2, 1)
    assert 'http_request_duration_seconds_count{handler="/v1/sales",method="POST"}' in client.get("/metrics").text
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["checks"] == {"kafka": True}
    assert "/v1/sales" in client.get("/openapi.json").json()["paths"]


def test_broker_unreachable_gives_503_and_not_ready() -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", ingest_ack_timeout_seconds=1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "kafka" in ready.json()["detail"]
        response = c.post("/v1/sales", json=records("S", 2))
        assert response.status_code == 503
        assert "Retry" in response.json()["detail"] and response.headers["retry-after"]
        assert c.post("/v1/sales", content=b"[oops", headers={"Content-Type": "application/json"}).status_code == 400


def test_broker_restart_503_then_recovers(tmp_path: Path, shop: str) -> None:
    """A memory-only broker restart loses the topics: 503 while it is down, readiness back once the service has
    re-created them, and the same request then succeeds. The 503'd attempt may still be delivered late (at least
    once): replace-on-key makes that harmless, so the topic holds the batch's values and nothing else."""
    broker = EmbeddedBroker(free_port(), tmp_path / "broker", die_with_parent=True)
    broker.start()
    settings = Settings(kafka_bootstrap=broker.bootstrap, ingest_ack_timeout_seconds=2)
    try:
        with TestClient(create_app(settings, topic_check_interval=0.3), raise_server_exceptions=False) as c:
            wait_ready(c)
            batch = records(shop, 3)
            assert c.post("/v1/sales", json=batch).json()["accepted"] == 3
            broker.stop()
            assert c.post("/v1/sales", json=batch).status_code == 503
            broker.start()
            wait_ready(c)
            assert c.post("/v1/sales", json=batch).json()["accepted"] == 3
            landed = read_topic(broker.bootstrap, SALES_MONTHLY, shop, 3)  # only what came after the restart
            values = {orjson.dumps(decode_event(m.value, m.headers, m.key).data) for m in landed}
            assert len(landed) in (3, 6)
            assert values == {orjson.dumps({**r, "sales_qty": float(r["sales_qty"])}) for r in batch}
    finally:
        broker.stop()


def test_nan_cannot_sneak_in_as_a_float(client: TestClient) -> None:
    """JSON has no NaN; the closest a client gets is a string or a huge number, both refused."""
    assert client.post("/v1/sales", json=[{**records("S", 1)[0], "sales_qty": "nan"}]).json()["rejected"] == 1
    big = b'[{"shop_id": "S", "product_id": "P", "year": 2020, "month": 1, "sales_qty": 1e400}]'
    assert client.post("/v1/sales", content=big, headers={"Content-Type": "application/json"}).status_code == 400
    assert not math.isfinite(float("1e400"))
