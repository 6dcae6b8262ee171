"""Bulk-ingest throughput: CSV -> CloudEvents -> real embedded broker (tansu), acks=all. Target >= 50,000 rows/s.

    .venv/bin/python bench/bench_ingest.py [--retailers 2000] [--years 3] [--chunksize 50000]

Generates a synthetic Kaggle-schema CSV (``shared.data.generator``), starts a private broker on a free port,
loads the file with the same code as ``stableseg ingest`` and prints rows/s, then reads the topic back and checks
that every row arrived. Also prints the per-record cost of the two CloudEvents encoders, to show why the bulk
path builds headers once per chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from services.ingest.bulk import DEFAULT_CHUNKSIZE, load_csv
from services.ingest.encoding import EventBatch
from shared.bus import encode_event, ensure_topics, topic_specs
from shared.bus.topics import SALES_MONTHLY
from shared.config import Settings
from shared.data.generator import generate
from shared.stack import EmbeddedBroker, free_port

TARGET_ROWS_PER_SECOND = 50_000


def encoder_costs(n: int = 20_000) -> dict[str, float]:
    """Microseconds per record: the library per record vs one library call per batch."""
    data = {"shop_id": "S1", "product_id": "P1", "year": 2020, "month": 3, "sales_qty": 4.0}
    t0 = time.perf_counter()
    for _ in range(n):
        encode_event(SALES_MONTHLY, data, "S1", "/bench", time=datetime.now(UTC))
    per_record = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    batch = EventBatch(SALES_MONTHLY, "/bench")
    for i in range(n):
        batch.record(i, "S1", data)
    per_batch = (time.perf_counter() - t0) / n * 1e6
    return {"library_per_record_us": round(per_record, 2), "batch_headers_us": round(per_batch, 2)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_topic(bootstrap: str, topic: str) -> int:
    """Records in ``topic``, by reading them all (tansu's end offsets stop at the last batch's base offset)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retailers", type=int, default=2000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--chunksize", type=int, default=DEFAULT_CHUNKSIZE)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    generated = generate(args.retailers, args.years, args.seed, work / "data")
    broker = EmbeddedBroker(free_port(), work / "broker", die_with_parent=True)
    broker.start()
    try:
        ensure_topics(broker.bootstrap, topic_specs(Settings()))
        pid = broker.pid
        if pid is None:
            raise SystemExit(f"the broker did not start: {broker.log_tail()}")
        broker_cpu, own_cpu = cpu_seconds(pid), time.process_time()
        summary = load_csv(generated.sales_path, broker.bootstrap, chunksize=args.chunksize)
        broker_cpu, own_cpu = cpu_seconds(pid) - broker_cpu, time.process_time() - own_cpu
        landed = count_topic(broker.bootstrap, SALES_MONTHLY)
    finally:
        broker.stop()
    result = {
        "rows": generated.rows, **summary.as_dict(), "landed_in_topic": landed,
        "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        "meets_target": summary.rows_per_second >= TARGET_ROWS_PER_SECOND,
        # CPU per row does not depend on what else the machine runs; 1e6 / loader_cpu_us_per_row is the rate one
        # idle core for the loader allows (the broker runs on the other).
        "loader_cpu_us_per_row": round(own_cpu / summary.rows_read * 1e6, 2),
        "broker_cpu_us_per_row": round(broker_cpu / summary.rows_read * 1e6, 2),
        "load_average_1min": round(os.getloadavg()[0], 2), **encoder_costs(),
    }
    print(json.dumps(result, indent=2))
    return 0 if landed == summary.produced == generated.rows else 1


if __name__ == "__main__":
    sys.exit(main())
