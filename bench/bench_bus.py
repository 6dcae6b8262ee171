"""Bus throughput on the embedded broker: CloudEvents encode/decode and produce/consume rates.

Run: ``.venv/bin/python bench/bench_bus.py [--records 50000]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from kafka import KafkaConsumer

from shared.bus import decode_event, encode_event, ensure_topics, make_sync_producer, publish
from shared.bus import topics as t
from shared.stack import EmbeddedBroker, free_port


def _sale(i: int) -> dict:
    return {"shop_id": f"s{i % 5000}", "product_id": f"p{i % 300}", "year": 2023, "month": 1 + i % 12, "sales_qty": i}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    n = parser.parse_args().records
    result: dict[str, float] = {"records": n}

    start = time.perf_counter()
    records = [encode_event(t.SALES_MONTHLY, _sale(i), f"s{i % 5000}", "/bench") for i in range(n)]
    result["encode_per_s"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for r in records:
        decode_event(r.value, r.headers, r.key)
    result["decode_per_s"] = n / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), tmp, die_with_parent=True)
        start = time.perf_counter()
        broker.start()
        result["broker_start_s"] = time.perf_counter() - start
        try:
            ensure_topics(broker.bootstrap, {t.SALES_MONTHLY: 4})
            producer = make_sync_producer(broker.bootstrap)
            start = time.perf_counter()
            for r in records:
                publish(producer, r)
            producer.flush()
            result["produce_per_s"] = n / (time.perf_counter() - start)
            result["producer_idempotent"] = producer.config["enable_idempotence"]
            producer.close()
            consumer = KafkaConsumer(
                t.SALES_MONTHLY, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                consumer_timeout_ms=5000, max_poll_records=5000,
            )
            start, got = time.perf_counter(), 0
            for message in consumer:
                decode_event(message.value, message.headers, message.key)
                got += 1
                if got == n:
                    break
            result["consume_decode_per_s"] = got / (time.perf_counter() - start)
            result["consumed"] = got
            consumer.close()
        finally:
            broker.stop()
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
