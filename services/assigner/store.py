"""Current assignments in Redis: one hash per retailer, written a generation at a time, read in one round trip.

Layout (the assigner's keyspace, prefix ``asg:``; the generation scheme is :class:`shared.keyspace.Generations`,
shared with the feature store):

- ``asg:gen``: the live generation ``g`` (absent = none yet).
- ``asg:<g>:r:<shop_id>`` (hash): ``segment``, ``name``, ``status`` (assigned | noise | ineligible), ``strength``,
  ``model_version``, ``since`` (ISO-8601 UTC: when the segment or status last changed), ``reason``. No hash tag,
  so on Redis Cluster the retailers spread over every slot.
- ``asg:<g>:{asg.<g>}:shops`` (set): every retailer of the generation; ``...:serving`` (JSON): the serving map
  (:class:`services.assigner.book.Serving`) plus the model's sha256 and artifact URI; ``...:pending`` (JSON): the
  SQL and event work of the relabel that builds generation ``g`` (write-ahead). One hash tag, one slot: serving and
  pending are written in one MULTI/EXEC on a cluster too.

A relabel writes the next generation beside the live one and switches ``asg:gen`` in one command, so readers see
the old or the new assignment of every retailer, never a mix; a crash before the switch leaves the live
generation untouched, and ``pending`` lets the next start finish the work without recomputing it. Online updates
(one retailer's ``features.updated``) write into the live generation. The API reads a retailer in one round trip
on one Redis (a script reads the pointer and the hash); on a cluster, where a script cannot reach both slots, it
reads the pointer, then the hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pandas as pd

from shared.keyspace import Generations, drop_prefix
from shared.redis_client import async_redis_client, is_cluster, redis_client

ROOT = "asg"
GEN_KEY = f"{ROOT}:gen"
FIELDS = ("segment", "name", "status", "strength", "model_version", "since", "reason")
_CHUNK = 5000
_WRITE_ROWS = 1000  # retailers per write script call (one Redis): ~7,000 arguments
# HSET each retailer of KEYS: ARGV holds the FIELDS values of one retailer after the other
_WRITE = "\n".join([
    "for i = 1, #KEYS do",
    f"  local b = (i - 1) * {len(FIELDS)}",
    "  redis.call('HSET', KEYS[i], " + ", ".join(f"'{f}', ARGV[b + {j + 1}]" for j, f in enumerate(FIELDS)) + ")",
    "end",
    "return #KEYS",
])
# GET the live generation and HGETALL the retailer in one round trip
_READ = """
local g = redis.call('GET', KEYS[1])
if not g then return {} end
return redis.call('HGETALL', 'asg:' .. g .. ':r:' .. ARGV[1])
"""


def prefix(gen: int) -> str:
    return f"{ROOT}:{gen}:"


def meta_key(gen: int, name: str) -> str:
    """``shops``, ``serving`` or ``pending`` of a generation (one hash tag per generation)."""
    return f"{ROOT}:{gen}:{{{ROOT}.{gen}}}:{name}"


def _cluster_default() -> bool:
    from shared.config import get_settings

    return get_settings().redis_cluster


def _pairs(values: list[str]) -> list[str]:
    """HSET's field-value arguments of one retailer."""
    return [x for pair in zip(FIELDS, values, strict=True) for x in pair]


def _texts(column: pd.Series) -> list[str]:
    """A column as the strings Redis stores: missing values (None, NaN) as ""."""
    values = column.astype(object)
    return values.astype(str).where(values.notna(), "").tolist()


def decode_state(flat: list[bytes] | dict[bytes, bytes]) -> dict[str, Any] | None:
    """A retailer hash as a typed dict (None when absent)."""
    items = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
    raw = {k.decode(): v.decode() for k, v in items}
    if not raw:
        return None
    return {
        "segment": raw.get("segment") or None,
        "name": raw.get("name") or None,
        "status": raw.get("status") or "unknown",
        "strength": float(raw["strength"]) if raw.get("strength") else 0.0,
        "model_version": int(raw["model_version"]) if raw.get("model_version") else None,
        "since": raw.get("since") or None,
        "reason": raw.get("reason") or None,
    }


class AssignmentStore:
    """Writes and bulk reads (sync client, called from worker threads)."""

    def __init__(self, redis_url: str | None = None, *, client: Any = None, cluster: bool | None = None) -> None:
        if client is None:
            cluster = _cluster_default() if cluster is None else cluster
            client = redis_client(redis_url or "", cluster=cluster, socket_timeout=30)
        self.redis = client
        self.generations = Generations(client, ROOT, GEN_KEY)

    def close(self) -> None:
        self.redis.close()

    def gen(self) -> int | None:
        return self.generations.current()

    def serving(self) -> dict[str, Any] | None:
        """The live generation's serving record (Serving JSON + sha256 + artifact_uri), None before any model."""
        gen = self.gen()
        raw = None if gen is None else self.redis.get(meta_key(gen, "serving"))
        return None if raw is None else orjson.loads(raw)

    def get(self, shop_id: str) -> dict[str, Any] | None:
        gen = self.gen()
        return None if gen is None else decode_state(self.redis.hgetall(f"{prefix(gen)}r:{shop_id}"))

    def states(self, shops: Iterable[str] | None = None) -> pd.DataFrame:
        """Retailers of the live generation (all, or those of ``shops`` that it knows): index shop_id, the FIELDS
        columns (typed)."""
        gen = self.gen()
        if gen is None:
            return _frame([], [])
        wanted = sorted(m.decode() for m in self.redis.smembers(meta_key(gen, "shops"))) if shops is None else list(
            dict.fromkeys(str(s) for s in shops))
        rows: list[list[bytes | None]] = []
        for start in range(0, len(wanted), _CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for shop in wanted[start : start + _CHUNK]:
                pipe.hmget(f"{prefix(gen)}r:{shop}", FIELDS)
            rows.extend(pipe.execute())
        found = [i for i, row in enumerate(rows) if row[2] is not None]  # status is always written
        return _frame([wanted[i] for i in found], [rows[i] for i in found])

    # --- writing -------------------------------------------------------------------------------------------
    def stage(self, states: pd.DataFrame, serving: dict[str, Any], pending: dict[str, Any]) -> int:
        """Write a complete next generation (not live yet) and its pending work; returns its number."""
        gen = (self.gen() or 0) + 1
        self.generations.drop(gen)  # leftovers of an earlier attempt that crashed before switching
        self._write(gen, states)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(meta_key(gen, "serving"), orjson.dumps(serving))
        pipe.set(meta_key(gen, "pending"), orjson.dumps(pending))
        pipe.execute()
        return gen

    def pending(self) -> tuple[int, dict[str, Any]] | None:
        """The staged generation and its pending work, when a relabel stopped before switching."""
        gen = (self.gen() or 0) + 1
        raw = self.redis.get(meta_key(gen, "pending"))
        return None if raw is None else (gen, orjson.loads(raw))

    def switch(self, gen: int) -> None:
        """Make ``gen`` live (one SET), drop its write-ahead record, then delete the previous generation's keys.
        (Two commands on a cluster: a crash between them leaves a stale ``pending`` of the live generation, which
        ``pending()`` never reads.)"""
        old = self.gen()
        if is_cluster(self.redis):
            self.generations.switch(gen)
            self.redis.delete(meta_key(gen, "pending"))
        else:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(GEN_KEY, gen)
            pipe.delete(meta_key(gen, "pending"))
            pipe.execute()
        if old is not None and old != gen:
            self.generations.drop(old)

    def write_live(self, states: pd.DataFrame) -> None:
        """Update retailers in the live generation (online path)."""
        gen = self.gen()
        if gen is None:
            raise RuntimeError("write_live: no live generation (no model applied yet)")
        self._write(gen, states)

    def _write(self, gen: int, states: pd.DataFrame) -> None:
        """HSET every retailer of ``states`` into generation ``gen`` and add it to the generation's set, ``_CHUNK``
        retailers per pipeline: on one Redis a script call per ``_WRITE_ROWS`` retailers (one reply each, values
        built column by column), on a cluster (keys in every slot) one HSET per retailer."""
        shops = [str(s) for s in states.index]
        keys = [f"{prefix(gen)}r:{shop}" for shop in shops]
        width = len(FIELDS)
        values: list[str] = [""] * (width * len(shops))
        for i, field in enumerate(FIELDS):
            if field in states.columns:
                values[i::width] = _texts(states[field])
        cluster = is_cluster(self.redis)
        script = None if cluster else self.redis.register_script(_WRITE)
        for start in range(0, len(shops), _CHUNK):
            stop = min(start + _CHUNK, len(shops))
            pipe = self.redis.pipeline(transaction=False)
            for at in range(start, stop, 1 if cluster else _WRITE_ROWS):
                end = min(at + _WRITE_ROWS, stop)
                if script is None:
                    pipe.execute_command("HSET", keys[at], *_pairs(values[width * at : width * (at + 1)]))
                else:
                    script(keys=keys[at:end], args=values[width * at : width * end], client=pipe)
            pipe.sadd(meta_key(gen, "shops"), *shops[start:stop])
            pipe.execute()

    def wipe(self) -> None:
        """Delete every assigner key (tests, ``stableseg`` resets)."""
        drop_prefix(self.redis, f"{ROOT}:")


class AsyncReader:
    """The API's read path: one EVALSHA per request."""

    def __init__(self, redis_url: str, cluster: bool | None = None) -> None:
        self.cluster = _cluster_default() if cluster is None else cluster
        self.redis = async_redis_client(redis_url, cluster=self.cluster, socket_timeout=5)
        self._read = None if self.cluster else self.redis.register_script(_READ)

    async def get(self, shop_id: str) -> dict[str, Any] | None:
        if self._read is not None:
            return decode_state(await self._read(keys=[GEN_KEY], args=[shop_id]))
        gen = await self.redis.get(GEN_KEY)
        return None if gen is None else decode_state(await self.redis.hgetall(f"{prefix(int(gen))}r:{shop_id}"))

    async def serving(self) -> dict[str, Any] | None:
        gen = await self.redis.get(GEN_KEY)
        raw = None if gen is None else await self.redis.get(meta_key(int(gen), "serving"))
        return None if raw is None else orjson.loads(raw)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        await self.redis.aclose()


def _frame(shops: list[str], rows: list[list[bytes | None]]) -> pd.DataFrame:
    def col(i: int) -> list[str | None]:
        return [None if r[i] in (None, b"") else r[i].decode() for r in rows]

    index = pd.Index(shops, name="shop_id", dtype=object)
    strength = pd.to_numeric(pd.Series(col(3), index=index, dtype=object), errors="coerce").fillna(0.0)
    version = pd.to_numeric(pd.Series(col(4), index=index, dtype=object), errors="coerce").astype("Int64")
    frame = pd.DataFrame({f: pd.Series(col(i), index=index, dtype=object) for i, f in enumerate(FIELDS)}, index=index)
    frame["strength"] = strength.astype(float)
    frame["model_version"] = version
    return frame
