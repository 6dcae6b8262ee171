"""Speed of the assigner (issue 6): online assignment of one retailer, relabel of 60,000, and the segment API.

Run: ``.venv/bin/python bench/bench_assigner.py predict|relabel|api [options]`` (``--help`` on each).

- ``predict``: hdbscan's ``approximate_predict`` vs the batch implementation, for one point and for N points, on a
  HDBSCAN fitted to ``--train`` points in 5 dimensions (the latent size); then the whole online decision of one
  retailer (scale, encode, predict, hysteresis) on that model. Target: one retailer < 20 ms.
- ``relabel``: generator data for ``--retailers`` retailers, a real ``fit_bundle`` (``--epochs``), then the
  first relabel and a relabel by a reseeded model (predict + match + per-retailer decision + profiles), then
  staging the Redis generation and the SQL writes on an embedded Redis and SQLite. Target: < 20 s for 60,000.
- ``api``: ``stableseg serve assigner`` (one uvicorn worker, connected to an embedded broker) on an embedded Redis
  holding ``--retailers`` assignments; an open-loop load of GET /v1/retailers/{id}/segment at each ``--rates``
  for ``--seconds`` (``--repeats`` runs each), reporting achieved rate, p50/p99/p999 latency and
  errors. Target: p99 < 10 ms at 500 requests/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time

import hdbscan
import httpx
import numpy as np
import pandas as pd
import typer
from embedded_stores import embedded_stores, persist_relabel, publish_version

from services.assigner.book import Book
from services.assigner.predict import approximate_predict
from services.assigner.relabel import assign_online, relabel
from services.assigner.store import AssignmentStore
from shared.http import freeze_heap
from shared.stack import EmbeddedBroker, free_port
from shared.storage import Registry

app = typer.Typer(help=__doc__, no_args_is_help=True)


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000)


@app.command()
def predict(train: int = 20_000, batch: int = 60_000, repeats: int = 200, seed: int = 0) -> None:
    """One point and a batch: hdbscan's approximate_predict vs ours; then one retailer's whole online decision."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (6, 5))
    points = centres[rng.integers(0, 6, train)] + rng.normal(0, 1, (train, 5))
    model = hdbscan.HDBSCAN(min_cluster_size=50, prediction_data=True).fit(points)
    queries = points + rng.normal(0, 0.3, points.shape)
    for name, fn in (("hdbscan.approximate_predict", hdbscan.approximate_predict), ("batch approximate_predict",
                                                                                    approximate_predict)):
        times = []
        for i in range(repeats):
            started = time.perf_counter()
            fn(model, queries[i : i + 1])
            times.append(time.perf_counter() - started)
        print(f"{name:28s} one point: median {_ms(times, 50):.2f} ms, p99 {_ms(times, 99):.2f} ms")
    big = np.vstack([queries] * (batch // train + 1))[:batch]
    for name, fn in (("hdbscan.approximate_predict", hdbscan.approximate_predict), ("batch approximate_predict",
                                                                                    approximate_predict)):
        started = time.perf_counter()
        fn(model, big)
        seconds = time.perf_counter() - started
        print(f"{name:28s} {batch} points: {seconds:.2f} s ({seconds / batch * 1e6:.0f} us a point)")

    from shared.data.generator import generate_frames
    from shared.features import build_features
    from shared.model.fit import fit_bundle
    from shared.model.params import ModelParams

    frame = build_features(generate_frames(3000, 3, seed).sales)
    features = frame[frame["eligible"]].drop(columns=["eligible", "as_of"])
    bundle, _ = fit_bundle(features, "behaviour-v2", ModelParams(epochs=5, raw_baseline=False))
    first = relabel(Book(), features, bundle, 1)
    book = first.book().assignments
    times = []
    for i in range(repeats):
        shop = features.index[i % len(features)]
        started = time.perf_counter()
        assign_online(book.loc[[shop]], features.loc[[shop]], bundle, first.serving)
        times.append(time.perf_counter() - started)
    print(f"online decision of one retailer (encode + predict + hysteresis): median {_ms(times, 50):.2f} ms, "
          f"p99 {_ms(times, 99):.2f} ms")
    shops = features.index[:1000]
    started = time.perf_counter()
    assign_online(book.loc[shops], features.loc[shops], bundle, first.serving)
    print(f"online decision of a batch of {len(shops)} retailers (one features.updated poll): "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")


@app.command("relabel")
def relabel_bench(retailers: int = 60_000, years: int = 3, epochs: int = 5, seed: int = 11) -> None:
    """Relabel + match of every retailer (compute), then the Redis generation and SQL writes."""
    from shared.data.generator import generate_frames
    from shared.features import build_features
    from shared.model.fit import fit_bundle
    from shared.model.params import ModelParams
    started = time.perf_counter()
    frame = build_features(generate_frames(retailers, years, seed).sales)
    features = frame[frame["eligible"]].drop(columns=["eligible", "as_of"])
    print(f"{len(features)} eligible retailers; features in {time.perf_counter() - started:.0f} s", flush=True)
    bundles = [fit_bundle(features, "behaviour-v2", ModelParams(seed=s, epochs=epochs, raw_baseline=False))[0]
               for s in (42, 43)]
    t0 = time.perf_counter()
    first = relabel(Book(), features, bundles[0], 1)
    t1 = time.perf_counter()
    second = relabel(first.book(), features, bundles[1], 2)
    t2 = time.perf_counter()
    print(f"relabel v1 (first model): {t1 - t0:.2f} s  {first.counts}")
    print(f"relabel v2 (match to v1): {t2 - t1:.2f} s  {second.counts}")
    with embedded_stores() as stores:
        registry = Registry(stores.database_url)
        for version in (1, 2):
            publish_version(registry, "behaviour-v2", version, len(features), f"bench-{version}")
        store = AssignmentStore(stores.redis.url)
        previous = None
        for outcome in (first, second):
            persisted = persist_relabel(store, registry, outcome, previous)
            previous = store.states()
            print(f"persist v{outcome.version}: redis stage {persisted['stage']:.2f} s, SQL {persisted['sql']:.2f} s "
                  f"({persisted['history_rows']} history rows), switch {persisted['switch']:.2f} s")
        store.close()
        registry.close()


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """One keep-alive HTTP/1.1 GET on a raw connection (a minimal client: httpx costs more CPU than the server)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    await reader.readexactly(int(match.group(1)) if match else 0)
    return int(head[9:12])


async def _load(port: int, shops: list[str], rate: float, seconds: float,
                connections: int = 32) -> tuple[list[float], int, float]:
    """Open loop: request i is due at start + i / rate; its latency counts from that due time (no coordinated
    omission), over a pool of keep-alive connections."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    errors = 0

    async def one(shop: str, due: float) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        try:
            if await _get(reader, writer, f"/v1/retailers/{shop}/segment") != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        latencies.append(time.perf_counter() - due)
        pool.put_nowait((reader, writer))

    total = int(rate * seconds)
    began = time.perf_counter()
    tasks = []
    for i in range(total):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(shops[i % len(shops)], due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not pool.empty():
        pool.get_nowait()[1].close()
    return latencies, errors, total / elapsed


def _settle_persistence(url: str) -> None:
    """Wait for Redis' AOF rewrite (forked after a large write, e.g. 1M assignments) to end: it would otherwise
    take CPU from the server under test."""
    import redis

    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ResponseError):  # "already in progress": the one that matters, waited for below
        client.bgrewriteaof()
    while True:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            break
        time.sleep(0.2)
    client.close()


@app.command()
def api(retailers: int = 60_000, rates: str = "250,500,750,1000,1500", seconds: float = 15.0,
        repeats: int = 1) -> None:
    """Open-loop load on GET /v1/retailers/{id}/segment against one uvicorn worker (each rate ``repeats`` times)."""
    with embedded_stores() as stores:
        server, tmp = stores.redis, stores.folder
        store = AssignmentStore(server.url)
        shops = [f"S{i:06d}" for i in range(1, retailers + 1)]
        index = pd.Index(shops, name="shop_id", dtype=object)
        states = pd.DataFrame({"segment": "seg-0001", "name": "festive peak · growing · wide assortment",
                               "status": "assigned", "strength": 0.9, "model_version": 1,
                               "since": "2025-01-01T00:00:00+00:00", "reason": "retrain"}, index=index)
        store.switch(store.stage(states, {"version": 1, "feature_set": "behaviour-v2", "clusters": {}, "names": {}},
                                 {"version": 1}))
        _settle_persistence(server.url)
        broker = EmbeddedBroker(free_port(), tmp / "broker", die_with_parent=True)
        broker.start()
        database = stores.database_url
        with Registry(database) as registry:  # the service finds version 1 (its artifact is absent: refused, logged)
            publish_version(registry, "behaviour-v2", 1, 1, "absent")
        port = free_port()
        env = {**os.environ, "STABLESEG_REDIS_URL": server.url, "STABLESEG_ASSIGNER_PORT": str(port),
               "STABLESEG_KAFKA_BOOTSTRAP": broker.bootstrap, "STABLESEG_DATABASE_URL": database,
               "STABLESEG_DATA_DIR": str(tmp / "data"), "STABLESEG_LOG_LEVEL": "WARNING",
               "STABLESEG_LOG_FORMAT": "json"}
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "assigner"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/v1/retailers/{shops[0]}/segment", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the assigner did not start within 60 s")
                time.sleep(0.2)
            del states, index
            freeze_heap()  # the load generator's own full collections (1M ids) would count as server latency
            asyncio.run(_load(port, shops, 200, 3))  # warm-up
            for rate in (float(r) for r in rates.split(",") for _ in range(repeats)):
                latencies, errors, achieved = asyncio.run(_load(port, shops, rate, seconds))
                print(f"target {rate:6.0f}/s achieved {achieved:7.1f}/s  p50 {_ms(latencies, 50):6.2f} ms  "
                      f"p99 {_ms(latencies, 99):7.2f} ms  p999 {_ms(latencies, 99.9):7.2f} ms  "
                      f"mean {statistics.mean(latencies) * 1000:6.2f} ms  errors {errors}  "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=20)
            store.close()
            broker.stop()


if __name__ == "__main__":
    app()
