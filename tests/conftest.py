"""Shared fixtures: a REAL broker (tansu), a REAL redis-server, real SQL databases. No mocks of them.

Session fixtures are per pytest-xdist worker; free ports keep workers apart. Processes started here die with
the worker (PR_SET_PDEATHSIG), so an interrupted run leaves no orphans.

- ``kafka_bootstrap`` (session): "127.0.0.1:PORT" of a tansu broker shared by the worker's tests; topics and
  records persist across tests, so use unique consumer group ids / topic names, or ``fresh_kafka_bootstrap``.
- ``kafka_broker`` (session): the ``EmbeddedBroker`` behind ``kafka_bootstrap``.
- ``fresh_kafka_bootstrap`` (function): a broker of your own (empty, ~0.1 s to start) for tests that need an empty
  bus or restart/kill the broker.
- ``redis_server`` (session): ``EmbeddedRedis`` with ``.url``, ``.port``, ``.stop()``, ``.start()`` (same port and
  dir: the AOF restores data), ``.kill()`` (SIGKILL). AOF with appendfsync=always, so a SIGKILL loses nothing.
- ``redis_url`` (function): URL of a freshly FLUSHALLed Redis (restarts the server if a test left it down).
- ``sql_url`` (function, parametrised): a fresh SQLite file; plus a fresh PostgreSQL schema per test when
  ``STABLESEG_TEST_POSTGRES_URL`` is set (search_path in the URL's options; the schema is dropped afterwards).
- ``registry`` (function): a ``Registry`` on ``sql_url``, migrated to head as a service does at start.
- ``settings`` (function): ``Settings`` pointing at kafka_bootstrap, redis_url, a tmp data_dir and SQLite.
- ``topics`` (function): ensures every contract topic exists on ``kafka_bootstrap``; yields name -> partitions.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg  # noqa: F401 - before any test imports TensorFlow (see shared.model.autoencoder.import_keras)
import pytest

from shared.bus.topics import ensure_topics, topic_specs
from shared.config import Settings
from shared.stack import EmbeddedBroker, EmbeddedRedis, free_port
from shared.storage import Registry

POSTGRES_ENV = "STABLESEG_TEST_POSTGRES_URL"
_SQL_BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(POSTGRES_ENV) else [])


def _start_broker(data_dir: Path) -> EmbeddedBroker:
    broker = EmbeddedBroker(free_port(), data_dir, die_with_parent=True)
    broker.start()
    return broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    broker = _start_broker(tmp_path_factory.mktemp("broker"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: EmbeddedBroker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def fresh_kafka_bootstrap(tmp_path: Path) -> Iterator[str]:
    broker = _start_broker(tmp_path / "broker")
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("redis"), appendfsync="always", die_with_parent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    if not redis_server.is_running():
        redis_server.start()
    with redis_server.client() as conn:
        conn.flushall()
    yield redis_server.url


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=_SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        yield from _postgres_schema_url(os.environ[POSTGRES_ENV])


@pytest.fixture
def registry(sql_url: str) -> Iterator[Registry]:
    with Registry.open(sql_url) as reg:  # migrates to head, as a service does at start
        yield reg


@pytest.fixture
def settings(tmp_path: Path, kafka_broker: EmbeddedBroker, redis_server: EmbeddedRedis, redis_url: str) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'stableseg.db'}",
        artifact_uri=str(data_dir / "artifacts"),
        kafka_bootstrap=kafka_broker.bootstrap,
        redis_url=redis_url,
        broker_port=kafka_broker.port,
        redis_port=redis_server.port,
    )


@pytest.fixture
def topics(kafka_bootstrap: str, settings: Settings) -> dict[str, int]:
    specs = topic_specs(settings)
    ensure_topics(kafka_bootstrap, specs)
    return specs
