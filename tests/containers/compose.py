"""docker-compose.yml plus the container test's override, turned into ``podman run`` commands.

podman-compose is not available on the CI machine, so this reads the compose file the way Compose does for the
parts this project uses (``${VAR}``/``${VAR:-default}``/``${VAR:?error}`` interpolation, YAML anchors, override
merging, ``depends_on`` conditions) and writes one ``podman run`` per service. Services marked
``x-provided-by: host`` in the override run on the host instead of in a container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDE_FILE = Path(__file__).with_name("compose.override.yml")
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class ComposeError(ValueError):
    """The compose files use something this translation does not support, or a required variable is unset."""


def interpolate(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Compose variable interpolation applied to every string inside ``value``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name is None:
            return "$"
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op and op.endswith("-"):
            return arg if unset else str(current)
        if op and op.endswith("?") and unset:
            raise ComposeError(f"{where.lstrip('.')}: variable {name} is required: {arg}")
        return "" if current is None else str(current)

    return _VARIABLE.sub(one, value)


def merge(base: Any, override: Any) -> Any:
    """Compose's override merge for what this project uses: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: merge(base[k], v) if k in base else v for k, v in override.items()}}
    return override


def load(env: Mapping[str, str], files: tuple[Path, ...] = (COMPOSE_FILE, OVERRIDE_FILE)) -> dict[str, Any]:
    """The merged, interpolated compose model of ``files`` (later files override earlier ones)."""
    model: dict[str, Any] = {}
    for path in files:
        model = merge(model, interpolate(yaml.safe_load(path.read_text()), env, path.name))
    return model


@dataclass
class ContainerSpec:
    """One compose service as a container: the ``podman run`` arguments and what it waits for."""

    service: str
    name: str
    image: str
    args: list[str]
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    environment: dict[str, str] = field(default_factory=dict)
    read_only: bool = False


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (cond or {}).get("condition", "service_started") for name, cond in deps.items()}


def _healthcheck_args(check: dict[str, Any]) -> list[str]:
    test = check.get("test")
    if check.get("disable") or test == ["NONE"]:
        return ["--no-healthcheck"]
    args = []
    if test:
        kind, *rest = test if isinstance(test, list) else ["CMD-SHELL", test]
        args += ["--health-cmd", rest[0] if kind == "CMD-SHELL" else json.dumps(rest)]
    flags = {"interval": "--health-interval", "timeout": "--health-timeout", "retries": "--health-retries",
             "start_period": "--health-start-period"}
    return args + [arg for key, flag in flags.items() if key in check for arg in (flag, str(check[key]))]


SUPPORTED_KEYS = {"image", "build", "command", "entrypoint", "environment", "volumes", "ports", "depends_on",
                  "restart", "healthcheck", "network_mode", "read_only", "tmpfs", "cap_drop", "security_opt", "user"}
LABEL = "io.stableseg.container-test"


def _as_list(value: Any) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else [str(v) for v in value]


def _volume_arg(entry: Any, prefix: str, named: set[str]) -> str:
    """A compose short-syntax volume (``source:target[:mode]``) as a podman ``-v`` value."""
    if not isinstance(entry, str):
        raise ComposeError(f"volume {entry!r}: only the short syntax source:target[:mode] is supported")
    source, _, rest = entry.partition(":")
    if source in named:
        return f"{prefix}-{source}:{rest}"
    if source.startswith((".", "/")):
        return f"{(ROOT / source).resolve()}:{rest}"
    raise ComposeError(f"volume {entry!r}: {source} is neither a path nor a volume declared at the top level")


def container_spec(name: str, service: dict[str, Any], prefix: str, named_volumes: set[str]) -> ContainerSpec:
    """The ``podman run`` arguments (without ``run`` and the image's command) of compose service ``name``."""
    unknown = {k for k in service if not k.startswith("x-")} - SUPPORTED_KEYS
    if unknown:
        raise ComposeError(f"services.{name}: {sorted(unknown)} not supported by the container test's translation")
    network = service.get("network_mode")
    args = [f"--name={prefix}-{name}", f"--label={LABEL}={prefix}"]
    args += ["--network", network] if network else []
    if network != "host":  # on the host network a container's ports are the host's: nothing to publish
        args += [arg for port in _as_list(service.get("ports")) for arg in ("-p", port)]
    args += ["--read-only"] if service.get("read_only") else []
    # Docker's tmpfs is world-writable; podman's copies the image directory there but leaves it root-owned: `U`
    # hands it to the container's user instead, so the non-root service can write as it can under Docker.
    args += [arg for path in _as_list(service.get("tmpfs")) for arg in ("--tmpfs", f"{path}:U")]
    args += [arg for cap in _as_list(service.get("cap_drop")) for arg in ("--cap-drop", cap)]
    args += [arg for opt in _as_list(service.get("security_opt")) for arg in ("--security-opt", opt)]
    args += ["--user", str(service["user"])] if "user" in service else []
    args += ["--restart", str(service["restart"])] if "restart" in service else []
    args += _healthcheck_args(service["healthcheck"]) if "healthcheck" in service else []
    entrypoint = service.get("entrypoint")
    if entrypoint is not None:
        args += ["--entrypoint", json.dumps(entrypoint) if isinstance(entrypoint, list) else str(entrypoint)]
    environment = _environment(service)
    args += [arg for key, value in environment.items() for arg in ("--env", f"{key}={value}")]
    args += [arg for v in service.get("volumes") or [] for arg in ("-v", _volume_arg(v, prefix, named_volumes))]
    command = service.get("command")
    command = [] if command is None else command if isinstance(command, list) else ["sh", "-c", command]
    return ContainerSpec(service=name, name=f"{prefix}-{name}", image=service["image"],
                         args=[*args, service["image"], *map(str, command)], depends_on=_depends_on(service),
                         environment=environment, read_only=bool(service.get("read_only")))


def container_specs(model: dict[str, Any], prefix: str) -> tuple[list[ContainerSpec], list[str]]:
    """Specs of every service not provided by the host, in an order that honours ``depends_on``; and the names
    of the host-provided services."""
    services = model["services"]
    host = [name for name, svc in services.items() if svc.get("x-provided-by") == "host"]
    named = set(model.get("volumes") or {})
    specs = {n: container_spec(n, s, prefix, named) for n, s in services.items() if n not in host}
    ordered: list[ContainerSpec] = []
    while len(ordered) < len(specs):
        done = {s.service for s in ordered} | set(host)
        ready = [s for n, s in specs.items() if s not in ordered and set(s.depends_on) <= done]
        if not ready:
            raise ComposeError(f"depends_on has a cycle or an unknown service among {sorted(set(specs) - done)}")
        ordered += ready
    return ordered, host


def volume_names(model: dict[str, Any], prefix: str) -> list[str]:
    """The podman volume names of the compose file's top-level volumes."""
    return [f"{prefix}-{name}" for name in model.get("volumes") or {}]
