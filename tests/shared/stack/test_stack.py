"""The embedded stack (real tansu, real redis-server), its CLI, and the shared test fixtures themselves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from services.cli.main import app
from shared.bus import ensure_topics, missing_topics, topic_specs
from shared.config import Settings, get_settings
from shared.stack import (
    BinaryNotFoundError,
    EmbeddedBroker,
    EmbeddedRedis,
    ManagedProcess,
    PortInUseError,
    Stack,
    StackError,
    free_port,
)

pytestmark = pytest.mark.xdist_group("stack")


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a stack of its own (free ports, tmp data dir); whatever a test leaves running is stopped."""
    env = {
        "STABLESEG_BROKER_PORT": str(free_port()),
        "STABLESEG_REDIS_PORT": str(free_port()),
        "STABLESEG_DATA_DIR": str(tmp_path / "data"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()
    Stack(Settings()).down(timeout=3)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`stableseg stack ARGS` in a process of its own (the stack group only: the full CLI imports the ML stack)."""
    command = [sys.executable, "-m", "services.cli.stack", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ.copy())


def test_cli_up_status_down_twice(stack_env: dict[str, str]) -> None:
    broker_port, redis_port = stack_env["STABLESEG_BROKER_PORT"], stack_env["STABLESEG_REDIS_PORT"]
    # Round 1 in separate processes: the servers must outlive the `up` process.
    up = _cli("up")
    assert up.returncode == 0, up.stderr
    assert f"broker started: 127.0.0.1:{broker_port}" in up.stdout and "redis started" in up.stdout
    assert "sales.monthly" in up.stdout and "sqlite:///" in up.stdout
    again = _cli("up")
    assert again.returncode == 0 and again.stdout.count("already running") == 2
    assert "topics created: none" in again.stdout
    status = _cli("status")
    assert status.returncode == 0 and status.stdout.count("yes") == 4, status.stdout
    assert missing_topics(f"127.0.0.1:{broker_port}", topic_specs(Settings())) == []
    assert redis.Redis(port=int(redis_port)).ping()
    down = _cli("down")
    assert down.returncode == 0 and "redis: stopped" in down.stdout and "broker: stopped" in down.stdout

    # Round 2 through the `stableseg` app in-process (typer's runner), on the same ports and data dir.
    runner = CliRunner()
    result = runner.invoke(app, ["stack", "up"])
    assert result.exit_code == 0, result.output
    assert "broker started" in result.output and "redis started" in result.output
    status2 = runner.invoke(app, ["stack", "status"])
    assert status2.exit_code == 0 and status2.output.count("yes") == 4
    result = runner.invoke(app, ["stack", "down"])
    assert result.exit_code == 0 and "broker: stopped" in result.output
    status3 = runner.invoke(app, ["stack", "status"])
    assert status3.output.count("yes") == 0 and status3.output.count("no") >= 4
    assert "not running" in runner.invoke(app, ["stack", "down"]).output
    assert not any((Path(stack_env["STABLESEG_DATA_DIR"]) / "run").iterdir())


def test_port_taken_is_a_clear_error_and_nothing_starts(stack_env: dict[str, str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        os.environ["STABLESEG_REDIS_PORT"] = str(port)  # monkeypatch restores it (set by stack_env)
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["stack", "up"])
        assert result.exit_code == 1
        message = " ".join(result.output.split())
        assert f"redis: port {port} is already in use" in message and "STABLESEG_REDIS_PORT" in message
        assert not Stack(get_settings()).broker.is_running()  # checked before starting anything
        with pytest.raises(PortInUseError, match=f"port {port} .*STABLESEG_BROKER_PORT"):
            EmbeddedBroker(port, stack_env["STABLESEG_DATA_DIR"]).start()


class _MissingBroker(EmbeddedBroker):
    def binary(self) -> Path:
        return Path("/nonexistent/tansu")


class _BrokenRedis(EmbeddedRedis):
    def args(self) -> list[str]:
        return ["--port", "not-a-port"]


def test_binary_missing_and_early_exit_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BinaryNotFoundError, match="broker: executable not found at /nonexistent/tansu"):
        _MissingBroker(free_port(), tmp_path).start()
    with pytest.raises(StackError, match=r"(?s)redis exited with code \d+: .*not-a-port"):
        _BrokenRedis(free_port(), tmp_path, die_with_parent=True).start()


class _NeverHealthyRedis(EmbeddedRedis):
    start_timeout = 1.0

    def ping(self) -> bool:
        return False


def test_unhealthy_start_times_out_and_leaves_nothing_running(tmp_path: Path) -> None:
    server = _NeverHealthyRedis(free_port(), tmp_path, die_with_parent=True)
    with pytest.raises(StackError, match=r"redis on port \d+ not healthy after 1s"):
        server.start()
    assert server.pid is None and not server.pid_file.exists() and not server.is_running()


class _StubbornProcess(ManagedProcess):
    """A process that ignores SIGTERM (stands in for a hung server)."""

    name = "stubborn"

    def binary(self) -> Path:
        return Path(sys.executable).resolve()

    def args(self) -> list[str]:
        return ["-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                "time.sleep(120)"]

    def ping(self) -> bool:
        return "up" in self.log_tail()


def test_stop_escalates_to_sigkill_after_timeout(tmp_path: Path) -> None:
    process = _StubbornProcess(free_port(), tmp_path, die_with_parent=True)
    assert process.start() is True
    pid = process.pid
    assert pid is not None
    started = time.monotonic()
    assert process.stop(timeout=0.5) is True
    assert time.monotonic() - started >= 0.5
    assert not process.is_running() and not Path(f"/proc/{pid}").exists()


def test_down_never_kills_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        broker = EmbeddedBroker(free_port(), tmp_path)
        broker.pid_file.parent.mkdir(parents=True)
        broker.pid_file.write_text(f"{stranger.pid}\n")  # a stale pid file now naming another program
        assert broker.pid is None and not broker.is_running()
        assert broker.stop() is False
        assert stranger.poll() is None and not broker.pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_broker_restart_loses_topics_memory_storage(tmp_path: Path) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path, die_with_parent=True)
    specs = topic_specs(Settings())
    try:
        assert broker.start() is True and broker.start() is False  # idempotent
        ensure_topics(broker.bootstrap, specs)
        assert missing_topics(broker.bootstrap, specs) == []
        assert broker.stop() is True and not broker.is_healthy()
        broker.start()
        assert missing_topics(broker.bootstrap, specs) == sorted(specs)  # memory storage: all gone
    finally:
        broker.stop()


def test_redis_fixture_kill_and_restart_keep_data_via_aof(redis_server: EmbeddedRedis, redis_url: str) -> None:
    port = redis_server.port
    redis.Redis.from_url(redis_url).set("survivor", "1")
    assert redis_server.kill() is True and not redis_server.is_running()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    redis_server.start()
    assert redis_server.port == port and redis.Redis.from_url(redis_url).get("survivor") == b"1"
    redis_server.stop()
    redis_server.start()
    assert redis.Redis.from_url(redis_url).get("survivor") == b"1"


def test_redis_url_is_empty_for_each_test(redis_url: str) -> None:
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_settings_and_topics_fixtures(settings: Settings, topics: dict[str, int], kafka_bootstrap: str) -> None:
    assert settings.kafka_bootstrap == kafka_bootstrap
    assert redis.Redis.from_url(settings.redis_url).ping()
    assert settings.effective_database_url.startswith("sqlite:///") and settings.data_dir.is_dir()
    assert topics == topic_specs(settings) and missing_topics(kafka_bootstrap, topics) == []


def test_sql_url_is_a_fresh_database(sql_url: str) -> None:
    engine = sa.create_engine(sql_url)
    try:
        assert sa.inspect(engine).get_table_names() == []  # nothing left by other tests
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, name VARCHAR(20))"))
            conn.execute(sa.text("INSERT INTO probe (id, name) VALUES (1, 'x')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM probe")).scalar_one() == "x"
    finally:
        engine.dispose()
