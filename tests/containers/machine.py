"""Preparing a CI host (Debian, root, no Docker engine, no reachable image registry) to build and run the images:
podman with runc and cgroupfs, container rlimits left alone, a debootstrapped Debian base image, a wheelhouse of
the pinned set built on the host (pip inside a build cannot reach the index). Each step is skipped when done."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from tests.containers.compose import ROOT

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}  # command -> Debian package
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
BASE_IMAGE = "localhost/stableseg-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates,passwd"
WHEELHOUSE = ROOT / "wheelhouse"
WHEELHOUSE_STAMP = WHEELHOUSE / ".pyproject.sha256"


class MachineError(RuntimeError):
    """The host cannot be prepared (the message says what is missing)."""


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, failing with its output when it fails."""
    kwargs.setdefault("timeout", 1800)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired as exc:
        raise MachineError(f"{' '.join(argv[:6])} ... did not finish within {exc.timeout} s") from None
    if result.returncode != 0:
        raise MachineError(f"{' '.join(argv[:6])} ... exited {result.returncode}:\n{result.stdout[-3000:]}"
                           f"\n{result.stderr[-3000:]}")
    return result


def ensure_tools() -> list[str]:
    """Install podman, runc and debootstrap with apt when missing; the packages installed."""
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None})
    if not missing:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MachineError(f"missing {', '.join(missing)}: install them (apt-get install -y {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "install", "-y", "-q", *missing], env=env)
    except MachineError:
        run(["apt-get", "update", "-q"], env=env)
        run(["apt-get", "install", "-y", "-q", *missing], env=env)
    return missing


def _rlimits_raisable() -> bool:
    """Whether this process may raise its open-files hard limit (podman's default container ulimits need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= 1_048_576:
        return True
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, 1_048_576))
    except (ValueError, OSError):
        return False
    return True


def ensure_containers_conf() -> bool:
    """Write ``default_ulimits = []`` when the host cannot grant podman's default rlimits; True if written."""
    if _rlimits_raisable():
        return False
    if CONTAINERS_CONF.exists():
        conf = tomllib.loads(CONTAINERS_CONF.read_text())
        if conf.get("containers", {}).get("default_ulimits") == []:
            return False
        raise MachineError(f"{CONTAINERS_CONF}: add `default_ulimits = []` to its [containers] table (this host "
                           "cannot raise rlimits, so every container start would fail with setrlimit)")
    CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
    CONTAINERS_CONF.write_text("# written by stableseg's container test: this host cannot raise rlimits\n"
                               "[containers]\ndefault_ulimits = []\n")
    return True


def debian_mirror() -> str:
    """The Debian archive URL apt already uses on this host."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        for url in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, flags=re.MULTILINE):
            if url.rstrip("/").endswith("/debian"):
                return url
    raise MachineError("no Debian mirror (a URL ending in /debian) found in /etc/apt/sources.list*")


def image_exists(name: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", name], capture_output=True).returncode == 0


def ensure_base_image() -> bool:
    """A Debian bookworm image with Python 3.11 made with debootstrap (no registry needed); True if made now."""
    if image_exists(BASE_IMAGE):
        return False
    with tempfile.TemporaryDirectory(prefix="stableseg-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(rootfs),
             debian_mirror()])
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run([*PODMAN, "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_IMAGE], stdin=tar.stdout)
        if tar.wait() != 0:
            raise MachineError(f"tar of {rootfs} failed")
    return True


def _pyproject_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_wheelhouse() -> bool:
    """Wheels of the pinned set (runtime and train extras) plus the build backend, built with the host's pip into
    wheelhouse/ (the offline path of the Dockerfile); True if (re)built now."""
    digest = _pyproject_digest()
    if WHEELHOUSE_STAMP.exists() and WHEELHOUSE_STAMP.read_text().strip() == digest:
        return False
    for old in WHEELHOUSE.glob("*.whl"):
        old.unlink()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["train"],
              *pyproject["build-system"]["requires"]]
    WHEELHOUSE.mkdir(exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE), *wanted])
    WHEELHOUSE_STAMP.write_text(digest + "\n")
    return True


SOURCE_LABEL = "io.stableseg.source-digest"
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "shared", "services")


def source_digest() -> str:
    """SHA-256 over what the Dockerfile reads: its inputs, the wheelhouse's pinned set and the base image's id."""
    digest = hashlib.sha256()
    for name in BUILD_INPUTS:
        path = ROOT / name
        files = sorted(f for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts) if path.is_dir() \
            else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    digest.update(WHEELHOUSE_STAMP.read_bytes() if WHEELHOUSE_STAMP.exists() else b"")
    digest.update(run([*PODMAN, "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]).stdout.encode())
    return digest.hexdigest()


def _built_from(image: str) -> str:
    result = subprocess.run([*PODMAN, "image", "inspect", "--format", f'{{{{index .Labels "{SOURCE_LABEL}"}}}}',
                             image], capture_output=True, text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else ""


def build_images(service_image: str, trainer_image: str) -> bool:
    """``make images`` with podman, the debootstrapped base and the wheelhouse (the Dockerfile's offline path),
    unless both images carry the digest of the current sources; True if built now."""
    digest = source_digest()
    if all(_built_from(image) == digest for image in (service_image, trainer_image)):
        return False
    engine = " ".join(PODMAN)
    build_args = (f"--network host --build-arg BASE_IMAGE={BASE_IMAGE} --build-arg OFFLINE=1 "
                  f"--label {SOURCE_LABEL}={digest}")
    run(["make", "--no-print-directory", "-C", str(ROOT), "images", f"CONTAINER_ENGINE={engine}",
         f"IMAGE_BUILD_ARGS={build_args}", f"SERVICE_IMAGE={service_image}", f"TRAINER_IMAGE={trainer_image}"])
    return True
