"""Streaming throughput: CSV -> broker -> features service -> Redis. Target >= 20,000 records/s with one worker.

    .venv/bin/python bench/bench_stream.py [--retailers 8000] [--years 3] [--engine aiokafka|faust] [--preload]
        [--faust-baseline] [--profile-seconds S] [--deployed]

Starts a private tansu broker and redis-server (AOF everysec) on free ports, generates a synthetic Kaggle-schema
CSV, starts ONE features worker (``python -m services.features``), loads the CSV with the ``stableseg ingest``
code and waits until every record is applied and no shop waits for a recompute (lag back to zero). Prints JSON:
ingest rows/s, end-to-end records/s (first record produced -> caught up), and the CPU seconds the worker and Redis
spent (records per worker CPU-second is the figure that does not depend on other load on the machine), and the
time of one consistent ``FeatureStore.snapshot`` of every retailer.
Bars (issue 13): >= 80,000 records per worker CPU-second and <= 5 us of Redis CPU per record
(``records_per_worker_cpu_second``, ``redis_cpu_us_per_record``). ``--deployed`` then runs the same CSV through the
whole system as ``stableseg up`` starts it (embedded broker and Redis, ingest, features, trainer, assigner; a
private data dir and free ports), loaded with the ``stableseg ingest`` code; bar >= 40,000 records/s end to end
for 20,000 retailers x 5 years.
``--engine`` picks the worker's consumer (``STABLESEG_FEATURES_ENGINE``). ``--preload`` loads the topic first and
times the worker alone. ``--profile-seconds S`` records the worker with py-spy (if installed) for S seconds once the
load starts (folded stacks in ``--profile-out``). ``--faust-baseline`` also times a no-op faust agent
(``take_events``) over the same topic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis
from kafka import KafkaConsumer, TopicPartition

from services.ingest.bulk import load_csv
from shared.bus import ensure_topics, topic_specs
from shared.config import Settings
from shared.data.generator import generate
from shared.feature_store import FeatureStore
from shared.stack import EmbeddedBroker, EmbeddedRedis, Stack, free_port
from shared.stack.services import SERVICE_NAMES, ServiceProcess, service_processes

TARGET = 20_000
BARS = {"records_per_worker_cpu_second": 80_000, "redis_cpu_us_per_record": 5.0, "deployed_records_per_second": 40_000}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def high_watermarks(bootstrap: str, partitions: int) -> dict[int, int]:
    """From fetch responses (tansu's ListOffsets(latest) answers too low)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition("sales.monthly", p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        while any(consumer.highwater(tp) is None for tp in tps):
            consumer.poll(timeout_ms=200, max_records=1)
        return {tp.partition: consumer.highwater(tp) for tp in tps}
    finally:
        consumer.close()


def applied(client: redis.Redis) -> tuple[int, int]:
    store = FeatureStore(client=client, cluster=False)
    return sum(o + 1 for o, _ in store.offsets().values()), store.dirty_count()


def faust_baseline(bootstrap: str, records: int) -> dict[str, float]:
    """Run a no-op faust agent over the topic in a child process; its CPU cost per record."""
    out = subprocess.run([sys.executable, __file__, "--_faust-child", bootstrap, str(records)],
                         capture_output=True, text=True, timeout=3600)
    for line in (out.stdout + out.stderr).splitlines():  # faust's worker sends print() to its log (stderr)
        if '{"records"' in line:
            return json.loads(line[line.index('{"records"') :].strip())
    raise RuntimeError(f"faust baseline failed:\n{out.stderr[-2000:]}")


def _faust_child(bootstrap: str, records: int) -> None:  # pragma: no cover - runs in the child
    import faust

    app = faust.App("bench-faust-baseline", broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                    processing_guarantee="at_least_once", consumer_auto_offset_reset="earliest",
                    broker_rebalance_timeout=5, broker_session_timeout=10, broker_heartbeat_interval=3)
    topic = app.topic("sales.monthly", value_serializer="raw", key_serializer="raw")
    seen = {"n": 0, "cpu": 0.0, "wall": 0.0}

    @app.agent(topic, concurrency=1)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(5000, within=0.5):
            if not seen["n"]:
                seen["cpu"], seen["wall"] = time.process_time(), time.perf_counter()
            seen["n"] += len(events)
            if seen["n"] >= records:
                cpu, wall = time.process_time() - seen["cpu"], time.perf_counter() - seen["wall"]
                print(json.dumps({"records": seen["n"], "cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
                                  "records_per_cpu_second": round(seen["n"] / cpu)}), flush=True)
                os._exit(0)

    faust.Worker(app, loglevel="WARN", quiet=True).execute_from_commandline()


def _profile(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """Sample the worker with py-spy (folded stacks, ``--format raw``) in the background."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        print("py-spy is not installed: no profile", file=sys.stderr)
        return None
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retailers", type=int, default=8000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=["aiokafka", "faust"], default="aiokafka", help="features consumer")
    parser.add_argument("--preload", action="store_true", help="load the topic before starting the worker")
    parser.add_argument("--profile-seconds", type=float, default=0, help="py-spy the worker for this long")
    parser.add_argument("--profile-out", type=Path, default=Path("worker-profile.txt"))
    parser.add_argument("--faust-baseline", action="store_true")
    parser.add_argument("--faust-records", type=int, default=50_000, help="records the faust agent reads")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--deployed", action="store_true", help="also run the CSV through `stableseg up`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp_name:
        tmp = Path(tmp_name)
        gen = generate(args.retailers, args.years, args.seed, tmp / "data")
        print(f"generated {gen.rows} rows for {gen.retailers} retailers", file=sys.stderr)
        result: dict = {"records": gen.rows, "retailers": gen.retailers, "target_records_per_second": TARGET,
                        "bars": BARS, "engine": args.engine}
        broker = EmbeddedBroker(free_port(), tmp / "broker", die_with_parent=True)
        server = EmbeddedRedis(free_port(), tmp / "redis", appendfsync="everysec", die_with_parent=True)
        broker.start()
        server.start()
        try:
            run(args, tmp, broker, server, gen.sales_path, result)
        finally:
            broker.stop()
            server.stop()
        if args.deployed:
            result["deployed"] = deployed(args, tmp / "deployed", gen.sales_path)
        print(json.dumps(result, indent=2))


def run(args: argparse.Namespace, tmp: Path, broker: EmbeddedBroker, server: EmbeddedRedis, csv: Path,
        result: dict) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap, redis_url=server.url, data_dir=tmp,
                        features_port=free_port())
    ensure_topics(broker.bootstrap, topic_specs(settings))
    if args.preload:
        result["ingest"] = load_csv(csv, broker.bootstrap).as_dict()
    env = {**os.environ, "STABLESEG_KAFKA_BOOTSTRAP": broker.bootstrap, "STABLESEG_REDIS_URL": server.url,
           "STABLESEG_FEATURES_PORT": str(settings.features_port), "STABLESEG_LOG_FORMAT": "json",
           "STABLESEG_LOG_LEVEL": "WARNING", "STABLESEG_FEATURES_ENGINE": args.engine,
           "STABLESEG_DATA_DIR": str(tmp)}
    worker = subprocess.Popen([sys.executable, "-m", "services.features"], env=env,
                              stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(server.url)
    try:
        url = f"http://127.0.0.1:{settings.features_port}/readyz"
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        cpu0, redis_cpu0 = cpu_seconds(worker.pid), cpu_seconds(server.pid or 0)
        broker_cpu0 = cpu_seconds(broker.pid or 0)
        started = time.perf_counter()
        profiler = _profile(worker.pid, args.profile_seconds, args.profile_out) if args.profile_seconds else None
        if not args.preload:
            result["ingest"] = load_csv(csv, broker.bootstrap).as_dict()
        total = sum(high_watermarks(broker.bootstrap, settings.sales_partitions).values())
        wait_caught_up(client, total, started + args.timeout, lambda: worker.poll() is None)
        seconds = time.perf_counter() - started
        worker_cpu, redis_cpu = cpu_seconds(worker.pid) - cpu0, cpu_seconds(server.pid or 0) - redis_cpu0
        broker_cpu = cpu_seconds(broker.pid or 0) - broker_cpu0
        result["stream"] = {
            "seconds": round(seconds, 2), "records_per_second": round(total / seconds),
            "worker_cpu_seconds": round(worker_cpu, 2), "records_per_worker_cpu_second": round(total / worker_cpu),
            "redis_cpu_seconds": round(redis_cpu, 2), "redis_cpu_us_per_record": round(redis_cpu / total * 1e6, 2),
            "broker_cpu_seconds": round(broker_cpu, 2),
            "lag_back_to_zero": True,
            "shops_in_store": FeatureStore(client=client).shop_count(), "load_average": os.getloadavg()[0],
        }
        store = FeatureStore(client=client)
        began = time.perf_counter()
        rows = len(store.snapshot(settings.feature_set, eligible_only=False))
        result["snapshot"] = {"rows": rows, "seconds": round(time.perf_counter() - began, 3)}
        print(json.dumps(result["stream"]), file=sys.stderr, flush=True)
        if profiler is not None:
            profiler.wait(args.profile_seconds + 60)
    finally:
        worker.terminate()
        worker.wait(30)
    if args.faust_baseline:
        result["faust_noop_agent"] = faust_baseline(broker.bootstrap, min(total, args.faust_records))


def wait_caught_up(client: redis.Redis, total: int, deadline: float, alive: Callable[[], bool]) -> None:
    """Until every record is applied and no shop waits for a recompute."""
    while True:
        done, dirty = applied(client)
        if done >= total and dirty == 0:
            return
        if time.perf_counter() > deadline or not alive():
            raise RuntimeError(f"the features worker did not catch up ({done}/{total})")
        time.sleep(0.2)


def deployed(args: argparse.Namespace, data_dir: Path, csv: Path) -> dict:
    """The CSV through ``stableseg up`` (every service): end-to-end records/s and each process's CPU."""
    ports = {name: free_port() for name in ("broker", "redis", *SERVICE_NAMES)}
    env = {**os.environ, "STABLESEG_DATA_DIR": str(data_dir), "STABLESEG_LOG_LEVEL": "WARNING",
           "STABLESEG_FEATURES_ENGINE": args.engine,
           **{f"STABLESEG_{name.upper()}_PORT": str(port) for name, port in ports.items()}}
    for name in ("STABLESEG_KAFKA_BOOTSTRAP", "STABLESEG_REDIS_URL"):
        env.pop(name, None)  # the embedded endpoints
    cli = str(Path(sys.executable).parent / "stableseg")
    subprocess.run([cli, "up"], env=env, check=True, timeout=600, stdout=subprocess.DEVNULL)
    settings = Settings(data_dir=data_dir, **{f"{name}_port": port for name, port in ports.items()})
    stack = Stack(settings)
    try:
        pids = {"broker": stack.broker.pid, "redis": stack.redis.pid,
                **{s.name: s.pid for s in service_processes(settings)}}
        cpu0 = {name: cpu_seconds(pid or 0) for name, pid in pids.items()}
        client = redis.Redis.from_url(stack.redis.url)
        started = time.perf_counter()
        ingest = load_csv(csv, stack.broker.bootstrap).as_dict()
        total = sum(high_watermarks(stack.broker.bootstrap, settings.sales_partitions).values())
        features = ServiceProcess("features", settings)
        wait_caught_up(client, total, started + args.timeout, features.is_running)
        seconds = time.perf_counter() - started
        cpu = {name: round(cpu_seconds(pid or 0) - cpu0[name], 2) for name, pid in pids.items()}
        return {"records": total, "seconds": round(seconds, 2), "records_per_second": round(total / seconds),
                "ingest": ingest, "cpu_seconds": cpu,
                "records_per_features_cpu_second": round(total / max(cpu["features"], 1e-9)),
                "redis_cpu_us_per_record": round(cpu["redis"] / total * 1e6, 2),
                "load_average": os.getloadavg()[0]}
    finally:
        subprocess.run([cli, "down"], env=env, timeout=300, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--_faust-child":
        _faust_child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
