"""A managed child process with a pid file and a log file: the common part of the embedded broker and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from shared.logging import get_logger
from shared.stack.system import alive, die_with_parent, port_in_use, runs_binary

log = get_logger(__name__)


class StackError(RuntimeError):
    """An embedded component could not be started, checked or stopped (the message says why and what to do)."""


class PortInUseError(StackError):
    """The port a component should listen on is taken by another process."""


class BinaryNotFoundError(StackError):
    """The executable of a component is missing."""


class _NotReady(Exception):
    """The health probe did not answer yet (retried)."""


@dataclass
class ProcessStatus:
    """What one component looks like right now."""

    name: str
    pid: int | None
    port: int
    running: bool
    healthy: bool
    log_file: Path


class ManagedProcess:
    """A server binary run in the background: pid file ``run/<name>.pid``, log ``logs/<name>.log`` under data_dir.

    Subclasses define ``name``, ``port_setting``, ``binary()``, ``args()`` and ``ping()``.
    """

    name = "process"
    port_setting = "STABLESEG_PORT"
    start_timeout = 20.0

    def __init__(self, port: int, data_dir: Path | str, *, die_with_parent: bool = False) -> None:
        self.port = port
        self.data_dir = Path(data_dir).resolve()
        self.die_with_parent = die_with_parent
        self._popen: subprocess.Popen[bytes] | None = None

    # --- to override -----------------------------------------------------------------------------
    def binary(self) -> Path:
        raise NotImplementedError

    def args(self) -> list[str]:
        raise NotImplementedError

    def ping(self) -> bool:
        """One cheap health probe; raise or return False when not healthy."""
        raise NotImplementedError

    # --- paths -----------------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / f"{self.name}.log"

    # --- state -----------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The pid from the pid file when that process is alive and still runs our binary, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not alive(pid) or not runs_binary(pid, self.binary()):
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid is not None

    def is_healthy(self) -> bool:
        """True when the process runs and answers its health probe."""
        if not self.is_running():
            return False
        try:
            return bool(self.ping())
        except Exception:
            return False

    def status(self) -> ProcessStatus:
        pid = self.pid
        return ProcessStatus(self.name, pid, self.port, pid is not None, self.is_healthy(), self.log_file)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the process and wait until healthy. Returns False when it was already running (idempotent)."""
        if self.is_running():
            self.wait_healthy()
            return False
        binary = self.check_startable()
        for sub in ("run", "logs"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_file.open("ab") as out:
            self._popen = subprocess.Popen(
                [str(binary), *self.args()],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                start_new_session=not self.die_with_parent,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        self.pid_file.write_text(f"{self._popen.pid}\n")
        log.info("stack.start", component=self.name, pid=self._popen.pid, port=self.port)
        try:
            self.wait_healthy()
        except StackError:
            self.kill()  # never leave a half-started process behind
            raise
        return True

    def check_startable(self) -> Path:
        """Raise BinaryNotFoundError / PortInUseError when a start would fail; return the binary."""
        binary = self.binary()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise BinaryNotFoundError(f"{self.name}: executable not found at {binary}")
        if port_in_use(self.port):
            raise PortInUseError(
                f"{self.name}: port {self.port} is already in use by another process; "
                f"stop it or set {self.port_setting} to a free port"
            )
        return binary

    def prepare(self) -> None:
        """Hook run before the first start (create directories)."""

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Block until the health probe answers; raise StackError (with the log tail) when it never does."""

        limit = timeout or self.start_timeout

        def probe() -> None:
            if self._popen is not None and self._popen.poll() is not None:
                raise StackError(f"{self.name} exited with code {self._popen.returncode}: {self.log_tail()}")
            if not self.is_healthy():
                raise _NotReady

        retrying = Retrying(
            stop=stop_after_delay(limit), wait=wait_fixed(0.1), retry=retry_if_exception_type(_NotReady)
        )
        try:
            retrying(probe)
        except RetryError as exc:
            tail = self.log_tail()
            raise StackError(f"{self.name} on port {self.port} not healthy after {limit:.0f}s: {tail}") from exc

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``. Only a process we started (pid file + binary match).
        Returns False when nothing was running."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> bool:
        """SIGKILL at once (fault tests)."""
        return self._signal(signal.SIGKILL, 5.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> bool:
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, sig)
        if not self._wait_exit(pid, timeout):
            log.warning("stack.kill", component=self.name, pid=pid, reason=f"no exit {timeout}s after {sig.name}")
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        self._popen = None
        log.info("stack.stop", component=self.name, pid=pid, signal=sig.name)
        return True

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._popen is not None and self._popen.pid == pid:
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
