"""What every Redis keyspace of stableseg shares: a generation pointer, hash tags for slot groups, prefix deletion
and script calls that work on one Redis and on Redis Cluster alike.

- :class:`Generations`: one pointer key holds the live generation number ``g``; a keyspace's keys live under
  ``<root>:<g>:``. Readers read the pointer, then the keys; a switch is one command on the pointer (``advance``
  = INCR for an empty next generation, ``switch`` = SET for one staged beside the live one); old generations are
  then deleted with :func:`drop_prefix`. The feature store (its "epoch") and the assigner both use it.
- :func:`slot_tags`: ``groups`` hash tags whose cluster slots are spread evenly over the 16,384 slots, so the
  groups spread evenly over the masters of a cluster (masters own contiguous slot ranges). Keys that a script
  touches together carry the same tag.
- :class:`Script`: a Lua script run in pipelines (one round trip per node): ``EVALSHA``, re-loaded when a server
  answers NOSCRIPT (restart, failover); on a cluster ``EVAL`` (redis-py's cluster pipeline refuses EVALSHA; the
  server still compiles a script once and finds it again by its SHA).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from redis.crc import key_slot
from redis.exceptions import NoScriptError

from shared.redis_client import is_cluster

SLOTS = 16384
_CHUNK = 5000


@lru_cache
def slot_tags(groups: int) -> tuple[str, ...]:
    """Tag ``i`` of ``groups``: the shortest ``<i>.<n>`` whose slot lies in the i-th of ``groups`` equal ranges."""
    if not 1 <= groups <= SLOTS:
        raise ValueError(f"groups: must be between 1 and {SLOTS}, got {groups}")
    tags = []
    for i in range(groups):
        low, high = i * SLOTS // groups, (i + 1) * SLOTS // groups
        n = 0
        while not low <= key_slot(f"{i}.{n}".encode()) < high:
            n += 1
        tags.append(f"{i}.{n}")
    return tuple(tags)


def group_of(member: str, groups: int) -> int:
    """The slot group of an id (stable across processes and versions: CRC-32)."""
    return zlib.crc32(member.encode()) % groups


class Generations:
    """A generation pointer ``key`` for keys under ``<root>:<g>:``."""

    def __init__(self, client: Any, root: str, key: str) -> None:
        self.redis, self.root, self.key = client, root, key

    def prefix(self, gen: int) -> str:
        return f"{self.root}:{gen}:"

    def current(self) -> int | None:
        value = self.redis.get(self.key)
        return None if value is None else int(value)

    def advance(self) -> int:
        """Switch to a new, empty generation (one INCR); returns it."""
        return int(self.redis.incr(self.key))

    def switch(self, gen: int) -> None:
        """Make a staged generation live (one SET)."""
        self.redis.set(self.key, gen)

    def drop(self, gen: int) -> None:
        drop_prefix(self.redis, self.prefix(gen))


def drop_prefix(client: Any, prefix: str) -> None:
    """Delete every key starting with ``prefix`` (SCAN + UNLINK in chunks; every node of a cluster)."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=_CHUNK):
        batch.append(key)
        if len(batch) >= _CHUNK:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


class Script:
    """A Lua script called by SHA; ``run_many`` sends many calls in one pipeline (per node on a cluster)."""

    def __init__(self, client: Any, source: str) -> None:
        self.redis, self.source = client, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self.run_many([(keys, args)])[0]

    def run_many(self, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]], transaction: bool = False) -> list:
        """Replies in call order. Calls a server did not know the script for are re-sent after SCRIPT LOAD (only
        those: the others already ran)."""
        if is_cluster(self.redis):  # redis-py's cluster pipeline refuses EVALSHA; EVAL follows redirections
            pipe = self.redis.pipeline(transaction=transaction)
            for keys, args in calls:
                pipe.execute_command("EVAL", self.source, len(keys), *keys, *args)
            return pipe.execute()
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=transaction)
            for i in todo:
                keys, args = calls[i]
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            for i, reply in zip(todo, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
            missing = [i for i in todo if isinstance(replies[i], NoScriptError)]
            others = [replies[i] for i in todo if isinstance(replies[i], Exception) and i not in missing]
            if others:
                raise others[0]
            if not missing:
                return replies
            if attempt == 0:
                self.redis.script_load(self.source)  # on every primary of a cluster
            todo = missing
        raise NoScriptError(f"script {self.sha} still unknown after SCRIPT LOAD")
