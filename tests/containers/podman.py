"""The podman calls the container test makes (runc and cgroupfs, see machine.PODMAN). Every call has a deadline:
a podman that hangs fails the test instead of stalling it."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.containers.compose import LABEL, ContainerSpec
from tests.containers.machine import PODMAN, run

CALL_TIMEOUT = 60


def call(args: list[str], timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` without failing: the caller looks at the return code (124 when it timed out)."""
    argv = [*PODMAN, *args]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"podman {' '.join(args[:3])} timed out after {timeout} s")


def start(spec: ContainerSpec) -> None:
    run([*PODMAN, "run", "--detach", *spec.args], timeout=120)


def inspect(name: str) -> dict[str, Any]:
    return json.loads(run([*PODMAN, "container", "inspect", name], timeout=CALL_TIMEOUT).stdout)[0]


def state(name: str) -> dict[str, Any]:
    return inspect(name)["State"]


def healthcheck(name: str) -> bool:
    """Run the container's own HEALTHCHECK once (podman records the result in its health status)."""
    return call(["healthcheck", "run", name]).returncode == 0


def health_status(name: str) -> str:
    current = state(name)
    return (current.get("Health") or current.get("Healthcheck") or {}).get("Status", "")


def execute(name: str, argv: list[str], user: str | None = None) -> subprocess.CompletedProcess[str]:
    return call(["exec", *(["--user", user] if user else []), name, *argv])


def run_once(image: str, argv: list[str], entrypoint: str = "python") -> subprocess.CompletedProcess[str]:
    """A throwaway container of ``image`` running ``entrypoint argv``."""
    return call(["run", "--rm", "--network", "none", "--no-healthcheck", "--entrypoint", entrypoint, image, *argv])


def logs(name: str, tail: int = 60) -> str:
    result = call(["logs", "--tail", str(tail), name])
    return result.stdout + result.stderr


def image_size(image: str) -> int:
    return int(run([*PODMAN, "image", "inspect", "--format", "{{.Size}}", image]).stdout.strip())


def stop(name: str, timeout: int) -> float:
    """``podman stop`` (SIGTERM, then SIGKILL after ``timeout``): the seconds the container took to exit."""
    began = time.monotonic()
    call(["stop", "--time", str(timeout), name], timeout=timeout + 60)
    return round(time.monotonic() - began, 1)


def remove(prefix: str, volumes: list[str]) -> None:
    """Remove every container of this test (by label) and its volumes; images stay."""
    listing = ["ps", "-a", "--filter", f"label={LABEL}={prefix}", "--format", "{{.Names}}"]
    names: list[str] = []
    for _ in range(3):  # a container exiting during `rm --force` can make podman give up on it: try again
        names = call(listing).stdout.split()
        if not names:
            break
        call(["rm", "--force", "--time", "10", *names], timeout=120)
    else:
        raise RuntimeError(f"podman could not remove {names}")
    for volume in volumes:
        call(["volume", "rm", "--force", volume])
