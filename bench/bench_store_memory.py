"""Feature store memory: bytes per retailer in Redis for the generator's data, every stored feature set.

    .venv/bin/python bench/bench_store_memory.py [--retailers 20000 100000] [--years 5] [--seed 1]

For each size: a private redis-server (the embedded one), generated sales (``stableseg generate``'s CSV, read a
batch at a time) fed through the features service's own
``Processor`` (no broker: records as the consumer would hand them over, 5,000 per batch, every feature set of the
store), then ``INFO memory``: ``used_memory`` and ``used_memory_dataset`` after the load minus before, per
retailer; also the encoding of a sample of retailer hashes (``listpack``/``ziplist`` = compact) and the wall and
CPU time of the load. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from collections import namedtuple
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pandas as pd

from services.features.processor import Processor
from shared.data.generator import generate
from shared.feature_store import FeatureStore, Layout
from shared.features import FEATURE_SETS, EligibilityRule
from shared.stack import EmbeddedRedis, free_port

Consumed = namedtuple("Consumed", "offset key value timestamp")
BATCH = 5000


def _records(csv: Path) -> Iterator[list[Consumed]]:
    """The generated CSV as consumed records, a batch at a time (memory stays flat at any size)."""
    offset = 0
    for chunk in pd.read_csv(csv, chunksize=BATCH, dtype={"shop_id": str, "product_id": str}):
        batch = []
        for shop, product, year, month, qty in chunk.itertuples(index=False):
            value = orjson.dumps({"shop_id": shop, "product_id": product, "year": int(year), "month": int(month),
                                  "sales_qty": float(qty)})
            batch.append(Consumed(offset, shop.encode(), value, 1_700_000_000_000 + offset))
            offset += 1
        yield batch


async def _feed(processor: Processor, batches: Iterator[list[Consumed]]) -> int:
    records = 0
    for batch in batches:
        await processor.handle({0: batch})
        records += len(batch)
    return records


def measure(retailers: int, years: int, seed: int, tmp: Path) -> dict:
    server = EmbeddedRedis(free_port(), tmp / f"redis-{retailers}", appendfsync="no", die_with_parent=True)
    server.start()
    try:
        client = server.client()
        data = generate(retailers, years, seed, tmp / f"data-{retailers}")
        print(f"{retailers} retailers: {data.rows} records", file=sys.stderr, flush=True)
        before = client.info("memory")

        async def publish(_: Sequence) -> None:
            return None

        sets = [FEATURE_SETS[n] for n in sorted(FEATURE_SETS)]
        processor = Processor(client, publish, sets, EligibilityRule(), "sales.monthly", layout=Layout.from_settings())
        cpu0, began = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
        records = asyncio.run(_feed(processor, _records(data.sales_path)))
        seconds, cpu = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
        after = client.info("memory")
        store = FeatureStore(client=client, cluster=False, groups=Layout.from_settings().groups)
        shops = store.shop_count()
        sample = [k for _, k in zip(range(200), client.scan_iter(match="ss:*:r:*", count=1000), strict=False)]
        encodings = sorted({client.object("encoding", k).decode() for k in sample})
        used = after["used_memory"] - before["used_memory"]
        dataset = after["used_memory_dataset"] - before["used_memory_dataset"]
        return {"retailers": shops, "records": records, "feature_sets": [s.name for s in sets],
                "used_memory_bytes": used, "bytes_per_retailer": round(used / shops),
                "dataset_bytes_per_retailer": round(dataset / shops), "hash_encodings": encodings,
                "load_seconds": round(seconds, 1), "bench_process_cpu_seconds": round(cpu, 1),
                }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retailers", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        results = []
        for n in args.retailers:
            results.append(measure(n, args.years, args.seed, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
