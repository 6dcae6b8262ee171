"""Named leases (owner + expiry) in the database: "only one training at a time across replicas"."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from shared.logging import get_logger
from shared.storage.base import Part, dialect_insert
from shared.storage.models import Lock, utcnow

log = get_logger(__name__)
TRAINING_LOCK = "training"


class Locks(Part):
    """A lease is taken with one conditional UPDATE, which is atomic on SQLite and PostgreSQL alike."""

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take (or, for the same owner, extend) the lease ``name`` for ``ttl_seconds``; False if someone else
        holds an unexpired lease."""
        if not owner:
            raise ValueError("owner: must be a non-empty string (e.g. host:pid)")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds: must be > 0, got {ttl_seconds!r}")
        now = utcnow()
        with self.db.write() as session:
            seed = dialect_insert(session, Lock).values(name=name, owner=None, acquired_at=None, expires_at=None)
            session.execute(seed.on_conflict_do_nothing(index_elements=[Lock.name]))
            taken = session.execute(
                sa.update(Lock)
                .where(Lock.name == name, sa.or_(Lock.owner.is_(None), Lock.owner == owner, Lock.expires_at <= now))
                .values(owner=owner, acquired_at=now, expires_at=now + timedelta(seconds=ttl_seconds)),
                execution_options={"synchronize_session": False},
            ).rowcount
        log.info("registry.lock", lock=name, owner=owner, acquired=taken == 1)
        return taken == 1

    def release_lock(self, name: str, owner: str) -> bool:
        """Give the lease back; False if ``owner`` did not hold it (e.g. it expired and was taken over)."""
        with self.db.write() as session:
            released = session.execute(
                sa.update(Lock)
                .where(Lock.name == name, Lock.owner == owner)
                .values(owner=None, acquired_at=None, expires_at=None),
                execution_options={"synchronize_session": False},
            ).rowcount
        return released == 1

    def lock_holder(self, name: str) -> tuple[str, datetime] | None:
        """(owner, expires_at) of an unexpired lease, or None when the lock is free."""
        with self.db.read() as session:
            row = session.get(Lock, name)
            if row is None or row.owner is None or row.expires_at is None or row.expires_at <= utcnow():
                return None
            return row.owner, row.expires_at

    def acquire_training_lock(self, owner: str, ttl_seconds: float = 3600.0) -> bool:
        """The lease that keeps training to one replica at a time."""
        return self.acquire_lock(TRAINING_LOCK, owner, ttl_seconds)

    def release_training_lock(self, owner: str) -> bool:
        return self.release_lock(TRAINING_LOCK, owner)
