"""`stableseg ingest CSV` / services.ingest.bulk against a REAL broker: exact round trip, rejects, failures."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from aiokafka.errors import KafkaError as AIOKafkaError
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2
from typer.testing import CliRunner

from services.cli.main import app
from services.ingest.bulk import BulkLoadError, count_data_lines, load_csv
from shared.bus import decode_event, ensure_topics, topic_specs
from shared.bus.topics import SALES_MONTHLY, SALES_REJECTED
from shared.config import Settings
from shared.stack import EmbeddedBroker, free_port

pytestmark = pytest.mark.xdist_group("ingest")
VALID_ROWS = 3_000
BAD_LINES = {  # CSV line (header = 1) -> (raw line, field named in the error)
    5: ("S1,P1,2021,13,4", "month"),
    900: ("S2,P2,2021,3,-1", "sales_qty"),
    901: ("S3,,2021,3,1", "product_id"),
    2_500: ("S4,P4,twenty,3,1", "year"),
}


def write_csv(path: Path, seed: int = 3) -> pd.DataFrame:
    """VALID_ROWS seeded valid rows with BAD_LINES spliced in; returns the valid rows as they should land."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({
        "shop_id": [f"shop{n}" for n in rng.integers(0, 120, VALID_ROWS)],
        "product_id": [f"p{n}" for n in rng.integers(0, 500, VALID_ROWS)],
        "year": rng.integers(2019, 2024, VALID_ROWS),
        "month": rng.integers(1, 13, VALID_ROWS),
        "sales_qty": rng.integers(0, 1_000, VALID_ROWS) / 4,
    })
    lines = [f"{r.shop_id},{r.product_id},{r.year},{r.month},{r.sales_qty}" for r in rows.itertuples()]
    for line_no in sorted(BAD_LINES):
        lines.insert(line_no - 2, BAD_LINES[line_no][0])
    path.write_text("shop_id,product_id,year,month,sales_qty\n" + "\n".join(lines) + "\n")
    return rows


def consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list:
    """Every record of ``topic`` (waits for ``expect``, then one idle second to catch any extra)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5_000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        found: list = []
        deadline, idle_since = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            batch = [m for ms in consumer.poll(timeout_ms=200).values() for m in ms]
            found += batch
            if batch:
                idle_since = time.monotonic()
            elif len(found) >= expect and time.monotonic() - idle_since > 1.0:
                break
        return found
    finally:
        consumer.close()


def same_field(received: object, text: str) -> bool:
    """The reader may hand numbers back re-rendered ("4" as "4.0"); compare numbers as numbers."""
    try:
        return float(str(received)) == float(text)
    except ValueError:
        return str(received) == text


@pytest.fixture
def bootstrap(fresh_kafka_bootstrap: str) -> str:
    ensure_topics(fresh_kafka_bootstrap, topic_specs(Settings()))
    return fresh_kafka_bootstrap


def test_round_trip_counts_exactly(bootstrap: str, tmp_path: Path) -> None:
    csv, rejects = tmp_path / "sales.csv", tmp_path / "out" / "rejects.csv"
    expected = write_csv(csv)
    progress: list[tuple[str, int, int]] = []
    summary = load_csv(csv, bootstrap, chunksize=700, rejects_out=rejects,
                       progress=lambda *report: progress.append(report))

    total = VALID_ROWS + len(BAD_LINES)
    assert (summary.rows_read, summary.produced, summary.rejected) == (total, VALID_ROWS, len(BAD_LINES))
    done = [rows for _, rows, _ in progress]
    assert {(stage, unknown) for stage, _, unknown in progress} == {("sales.csv", 0)}
    assert len(done) > 1 and done == sorted(set(done)), "cumulative rows, one report per chunk"
    assert done[-1] == total == count_data_lines(csv)

    landed = consume_all(bootstrap, SALES_MONTHLY, VALID_ROWS)
    assert len(landed) == VALID_ROWS
    events = [decode_event(m.value, m.headers, m.key) for m in landed]
    got = sorted(orjson.dumps(e.data, option=orjson.OPT_SORT_KEYS) for e in events)
    want = sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in expected.to_dict("records"))
    assert got == want
    assert len({e.id for e in events}) == VALID_ROWS
    assert {e.type for e in events} == {"io.stableseg.sales.monthly.v1"}
    # the partition is the default (murmur2) partitioner's, as for every other producer of sales.monthly
    assert all(m.partition == (murmur2(m.key) & 0x7FFFFFFF) % 4 for m in landed)

    rejected = consume_all(bootstrap, SALES_REJECTED, len(BAD_LINES))
    values = {v["line"]: v for v in (decode_event(m.value, m.headers, m.key).data for m in rejected)}
    assert sorted(values) == sorted(BAD_LINES)
    for line_no, (raw, field) in BAD_LINES.items():
        assert [e["field"] for e in values[line_no]["errors"]] == [field]
        received = values[line_no]["record"]
        assert all(same_field(received[f], text) for f, text in zip(expected.columns, raw.split(","), strict=True))
        assert values[line_no]["source"] == "ingest"
    written = pd.read_csv(rejects)
    assert sorted(written["line"]) == sorted(BAD_LINES) and list(written.columns[:3]) == ["line", "field", "message"]


def test_cli_summary_and_exit_codes(bootstrap: str, tmp_path: Path) -> None:
    csv = tmp_path / "sales.csv"
    write_csv(csv)
    runner = CliRunner()
    ok = runner.invoke(app, ["ingest", str(csv), "--bootstrap", bootstrap, "--json", "--chunksize", "1000"])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["rows_read"] == VALID_ROWS + len(BAD_LINES) and summary["rejected"] == len(BAD_LINES)
    assert summary["produced"] == VALID_ROWS and summary["rows_per_second"] > 0

    human = runner.invoke(app, ["ingest", str(csv), "--bootstrap", bootstrap])
    assert human.exit_code == 0
    assert "rows read" in human.output and "line 5: month" in human.output and "--rejects-out" in human.output

    broken = tmp_path / "broken.csv"
    broken.write_text("shop_id,product_id,year,sales_qty\nS1,P1,2020,3\n")
    bad_file = runner.invoke(app, ["ingest", str(broken), "--bootstrap", bootstrap])
    assert bad_file.exit_code == 2 and "month" in bad_file.output

    nowhere = f"127.0.0.1:{free_port()}"
    down = runner.invoke(app, ["ingest", str(csv), "--bootstrap", nowhere, "--broker-wait", "1"])
    assert down.exit_code == 1 and "cannot reach the Kafka broker" in down.output


def test_broker_dying_mid_load_fails_the_load(tmp_path: Path) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker", die_with_parent=True)
    broker.start()
    try:
        ensure_topics(broker.bootstrap, topic_specs(Settings()))
        csv = tmp_path / "sales.csv"
        write_csv(csv)

        def kill_after_first_chunk(_stage: str, _rows: int, _total: int) -> None:
            broker.kill()

        started = time.monotonic()
        with pytest.raises((BulkLoadError, AIOKafkaError)):
            load_csv(csv, broker.bootstrap, chunksize=500, progress=kill_after_first_chunk, request_timeout_ms=2000)
        assert time.monotonic() - started < 60
    finally:
        broker.stop()
