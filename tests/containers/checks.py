"""What each image and container must be: no TensorFlow in the service image, non-root, read-only root filesystem
where the k8s manifests demand it, healthy by its own HEALTHCHECK, ready by /readyz."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import yaml

from tests.containers import podman
from tests.containers.compose import ROOT, ContainerSpec

K8S_BASE = ROOT / "k8s/base"
NO_TRAINING_LIBS = "import importlib.util as u, sys; found = [m for m in ('tensorflow', 'keras') if u.find_spec(m)]; \
print(found); sys.exit(1 if found else 0)"
HAS_TENSORFLOW = "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is None)"


class CheckFailed(AssertionError):
    """A container or image is not what the deployment files promise (the message says which and why)."""


@dataclass(frozen=True)
class K8sContract:
    """What the k8s manifest of a service asks of its container."""

    uid: int
    read_only: bool


def k8s_contracts() -> dict[str, K8sContract]:
    """compose service name -> the uid and read-only root filesystem its k8s workload demands."""
    contracts = {}
    for path in sorted(K8S_BASE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] not in ("Deployment", "Job"):
                continue
            pod = doc["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            name = doc["metadata"]["name"].removeprefix("stableseg-")
            read_only = bool(container.get("securityContext", {}).get("readOnlyRootFilesystem"))
            contracts[name] = K8sContract(int(pod["securityContext"]["runAsUser"]), read_only)
    return contracts


def check_images(service_image: str, trainer_image: str) -> None:
    """The service image holds neither TensorFlow nor Keras; the trainer image has TensorFlow."""
    result = podman.run_once(service_image, ["-c", NO_TRAINING_LIBS])
    if result.returncode != 0:
        raise CheckFailed(f"{service_image} must not contain TensorFlow/Keras: {result.stdout.strip()[-300:]}")
    if podman.run_once(trainer_image, ["-c", HAS_TENSORFLOW]).returncode != 0:
        raise CheckFailed(f"{trainer_image} has no TensorFlow")


def check_container(spec: ContainerSpec, contract: K8sContract) -> int:
    """Non-root with the manifest's uid, and a read-only root filesystem (even for root) where demanded."""
    print(f"[container-test] {spec.service}: checking uid and filesystem", flush=True)
    uid = podman.execute(spec.name, ["id", "-u"])
    if uid.returncode != 0 or int(uid.stdout) == 0 or int(uid.stdout) != contract.uid:
        raise CheckFailed(f"{spec.service}: runs as uid {uid.stdout.strip() or uid.stderr.strip()}, the k8s "
                          f"manifest says runAsUser {contract.uid} (non-root)")
    if contract.read_only:
        if not podman.inspect(spec.name)["HostConfig"].get("ReadonlyRootfs"):
            raise CheckFailed(f"{spec.service}: k8s demands readOnlyRootFilesystem; compose does not set read_only")
        probe = podman.execute(spec.name, ["touch", "/usr/.write-probe"], user="0")
        if probe.returncode == 0 or "Read-only file system" not in probe.stderr:
            raise CheckFailed(f"{spec.service}: the root filesystem is writable ({probe.stderr.strip()})")
    writable = podman.execute(spec.name, ["sh", "-c", "touch /tmp/.probe \"$STABLESEG_DATA_DIR/.probe\""])
    if writable.returncode != 0:
        raise CheckFailed(f"{spec.service}: /tmp or the data directory is not writable: {writable.stderr.strip()}")
    return int(uid.stdout)


def _ready(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy_and_ready(specs: list[ContainerSpec], started: dict[str, float], timeout: float) -> dict[str, dict]:
    """Poll every service until its HEALTHCHECK passes and /readyz answers 200: seconds from its start to each."""
    times: dict[str, dict] = {s.service: {} for s in specs}
    deadline = time.monotonic() + timeout
    while any(len(t) < 2 for t in times.values()):
        for spec in specs:
            got = times[spec.service]
            if not podman.state(spec.name).get("Running"):
                raise CheckFailed(f"{spec.service} exited:\n{podman.logs(spec.name)}")
            if "healthy_s" not in got and podman.healthcheck(spec.name):
                got["healthy_s"] = round(time.monotonic() - started[spec.service], 1)
                print(f"[container-test] {spec.service}: healthy after {got['healthy_s']} s", flush=True)
            if "ready_s" not in got and _ready(spec.environment["HEALTH_PORT"]):
                got["ready_s"] = round(time.monotonic() - started[spec.service], 1)
                print(f"[container-test] {spec.service}: ready after {got['ready_s']} s", flush=True)
        if time.monotonic() > deadline:
            raise CheckFailed(f"not healthy and ready after {timeout:.0f} s: {times}")
        time.sleep(1.0)
    for spec in specs:
        if podman.health_status(spec.name) != "healthy":
            raise CheckFailed(f"{spec.service}: podman reports health {podman.health_status(spec.name)!r}")
    return times


def wait_completed(spec: ContainerSpec, timeout: float) -> float:
    """Wait for a one-shot container to exit 0 (compose's service_completed_successfully); seconds waited (started
    just before, so about its run time)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        current = podman.state(spec.name)
        if current.get("Status") == "exited":
            if current.get("ExitCode") != 0:
                raise CheckFailed(f"{spec.service} exited {current.get('ExitCode')}:\n{podman.logs(spec.name)}")
            return round(time.monotonic() - began, 1)
        time.sleep(0.5)
    raise CheckFailed(f"{spec.service} did not finish within {timeout:.0f} s:\n{podman.logs(spec.name)}")

