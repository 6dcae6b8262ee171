"""The container test from start to end: prepare the host, build both images offline, run init and the four
services from docker-compose.yml (plus tests/containers/compose.override.yml) against the host's broker, Redis and
PostgreSQL, check them, run the demo flow through them, clean up (images stay). Prints and writes a JSON report."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.config import Settings
from shared.stack import free_port
from tests.containers import compose, machine, podman
from tests.containers.checks import (
    CheckFailed,
    check_container,
    check_images,
    k8s_contracts,
    wait_completed,
    wait_healthy_and_ready,
)
from tests.containers.compose import ROOT, ContainerSpec
from tests.containers.flow import demo_flow
from tests.containers.infra import HostInfra

PREFIX = "stableseg-ct"
SERVICES = ("ingest", "features", "trainer", "assigner")
STOP_TIMEOUT = 30  # the k8s manifests' terminationGracePeriodSeconds (30-120)
REPORT = ROOT / ".stableseg" / "container-test.json"


def _timed(report: dict[str, Any], step: str, action: Callable[[], Any]) -> Any:
    began = time.monotonic()
    print(f"[container-test] {step} ...", flush=True)
    result = action()
    report["seconds"][step] = round(time.monotonic() - began, 1)
    print(f"[container-test] {step}: {report['seconds'][step]} s ({result})", flush=True)
    return result


def prepare(report: dict[str, Any], service_image: str, trainer_image: str) -> None:
    """Host tools, rlimits, base image, wheelhouse, both images, the image checks."""
    _timed(report, "tools", machine.ensure_tools)
    _timed(report, "containers.conf", machine.ensure_containers_conf)
    _timed(report, "base image", machine.ensure_base_image)
    _timed(report, "wheelhouse", machine.ensure_wheelhouse)
    _timed(report, "images", lambda: machine.build_images(service_image, trainer_image))
    report["image_bytes"] = {image: podman.image_size(image) for image in (service_image, trainer_image)}
    _timed(report, "image checks", lambda: check_images(service_image, trainer_image))


def _environment(infra: HostInfra, token: str) -> dict[str, str]:
    ports = {f"CT_{name.upper()}_PORT": str(free_port()) for name in SERVICES}
    return {**infra.environment(), **ports, "STABLESEG_ADMIN_TOKEN": token, "STABLESEG_INGEST_TOKEN": token}


def _wait_dependencies(spec: ContainerSpec, specs: dict[str, ContainerSpec], infra: HostInfra,
                       done: dict[str, float]) -> None:
    for name, condition in spec.depends_on.items():
        if name not in specs:  # provided by the host: service_healthy means it answers
            if not infra.healthy(name):
                raise CheckFailed(f"{spec.service} depends on {name}, which the host does not provide healthy")
        elif condition == "service_completed_successfully" and name not in done:
            done[name] = wait_completed(specs[name], 300)


def run_services(report: dict[str, Any], specs: list[ContainerSpec], infra: HostInfra) -> None:
    """Start the containers in depends_on order, then check each long-running one."""
    by_name, completed = {s.service: s for s in specs}, {}
    started: dict[str, float] = {}
    for spec in specs:
        _wait_dependencies(spec, by_name, infra, completed)
        podman.start(spec)
        started[spec.service] = time.monotonic()
    services = [s for s in specs if "HEALTH_PORT" in s.environment]
    report["services"] = wait_healthy_and_ready(services, started, 600)
    contracts = k8s_contracts()
    for spec in specs:
        if spec in services:
            uid = check_container(spec, contracts[spec.service])
        else:  # a one-shot container has exited: its user is the one podman ran it as
            seconds = completed.get(spec.service) or wait_completed(spec, 300)
            uid = int(podman.inspect(spec.name)["Config"]["User"].split(":")[0])
            if uid in (0, None) or uid != contracts[spec.service].uid:
                raise CheckFailed(f"{spec.service} ran as uid {uid}; k8s says {contracts[spec.service].uid}")
            report["services"][spec.service] = {"start_to_exit_s": seconds}
        report["services"][spec.service] |= {"uid": uid, "read_only": spec.read_only}


def _host_settings(env: dict[str, str]) -> Settings:
    """How the host reaches the containers' system (same network)."""
    return Settings(kafka_bootstrap=env["CT_KAFKA_BOOTSTRAP"], redis_url=env["CT_REDIS_URL"],
                    database_url=env["CT_DATABASE_URL"],
                    **{f"{s}_port": int(env[f"CT_{s.upper()}_PORT"]) for s in SERVICES})


def main() -> int:
    report: dict[str, Any] = {"seconds": {}}
    began = time.monotonic()
    base = compose.load({"STABLESEG_ADMIN_TOKEN": "-", "STABLESEG_INGEST_TOKEN": "-"})
    service_image, trainer_image = base["services"]["ingest"]["image"], base["services"]["trainer"]["image"]
    prepare(report, service_image, trainer_image)
    infra, token = HostInfra(), secrets.token_hex(16)
    infra.start()
    env = _environment(infra, token)
    model = compose.load(env)
    specs, report["host_provided"] = compose.container_specs(model, PREFIX)
    volumes = compose.volume_names(model, PREFIX)
    podman.remove(PREFIX, volumes)
    try:
        _timed(report, "containers healthy", lambda: run_services(report, specs, infra))
        long_running = [s for s in specs if "HEALTH_PORT" in s.environment]
        report["flow"] = _timed(report, "demo flow", lambda: demo_flow(_host_settings(env), token, long_running))
        restarts = {s.service: podman.inspect(s.name).get("RestartCount", 0) for s in specs}
        if any(restarts.values()):
            raise CheckFailed(f"containers restarted during the test: {restarts}")
        with ThreadPoolExecutor(len(long_running)) as pool:  # SIGTERM: seconds until each one exited
            stops = pool.map(lambda s: podman.stop(s.name, STOP_TIMEOUT), long_running)
            report["stop_s"] = dict(zip([s.service for s in long_running], stops, strict=True))
    finally:
        podman.remove(PREFIX, volumes)
        infra.stop()
    report["seconds"]["total"] = round(time.monotonic() - began, 1)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
    print(f"[container-test] passed in {report['seconds']['total']} s (report: {REPORT})")
    return 0
