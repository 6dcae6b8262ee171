"""The whole embedded stack for one ``Settings``: broker, Redis, the SQLite directory, the contract topics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.bus.topics import ensure_topics, topic_specs
from shared.config import Settings
from shared.stack.broker import EmbeddedBroker
from shared.stack.process import ProcessStatus
from shared.stack.redis import EmbeddedRedis


@dataclass
class UpReport:
    """What ``Stack.up`` did: components started (False = already running), topics created, where things are."""

    started: dict[str, bool]
    topics_created: list[str]
    kafka_bootstrap: str
    redis_url: str
    database_url: str
    statuses: list[ProcessStatus] = field(default_factory=list)


class Stack:
    """``Stack(settings).up()`` / ``.down()`` / ``.status()``; every call is idempotent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()
        self.broker = EmbeddedBroker(settings.broker_port, self.data_dir)
        self.redis = EmbeddedRedis(settings.redis_port, self.data_dir)

    @property
    def components(self) -> list[EmbeddedBroker | EmbeddedRedis]:
        return [self.broker, self.redis]

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the stack's database (SQLite under data_dir unless STABLESEG_DATABASE_URL)."""
        return self.settings.effective_database_url

    def up(self) -> UpReport:
        """Start what is not running, wait until healthy, create every missing contract topic."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for component in self.components:  # fail before starting anything: no half-started stack
            if not component.is_running():
                component.check_startable()
        started = {c.name: c.start() for c in self.components}
        created = ensure_topics(self.broker.bootstrap, topic_specs(self.settings))
        return UpReport(started, created, self.broker.bootstrap, self.redis.url, self.database_url, self.status())

    def down(self, timeout: float = 10.0) -> dict[str, bool]:
        """Stop the components this stack started (name -> whether something was stopped)."""
        return {c.name: c.stop(timeout) for c in reversed(self.components)}

    def status(self) -> list[ProcessStatus]:
        return [c.status() for c in self.components]
