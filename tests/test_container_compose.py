"""Offline checks of the container test's compose translation (tests/containers/compose.py): no podman needed.

`make container-test` runs the images; these keep its inputs honest in `make test`: the override changes only
what it documents, the translation keeps compose's hardening, and compose agrees with the k8s manifests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.containers import compose
from tests.containers.checks import k8s_contracts

ENV = {"STABLESEG_ADMIN_TOKEN": "t0ken", "STABLESEG_INGEST_TOKEN": "in9est",
       "CT_KAFKA_BOOTSTRAP": "127.0.0.1:1111", "CT_REDIS_URL": "redis://h:2/0",
       "CT_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/ct", "CT_INGEST_PORT": "4001",
       "CT_FEATURES_PORT": "4002", "CT_TRAINER_PORT": "4003", "CT_ASSIGNER_PORT": "4004"}


def test_override_matches_the_compose_specification() -> None:
    exe = Path(shutil.which("check-jsonschema") or compose.ROOT / ".venv/bin/check-jsonschema")
    result = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(compose.OVERRIDE_FILE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_override_changes_only_infrastructure_network_and_environment() -> None:
    override = yaml.safe_load(compose.OVERRIDE_FILE.read_text())
    base = yaml.safe_load(compose.COMPOSE_FILE.read_text())
    assert set(override) == {"services", "x-host-endpoints"}
    for name, service in override["services"].items():
        assert name in base["services"], name
        allowed = {"x-provided-by"} if name in ("kafka", "redis", "postgres") else {"network_mode", "environment"}
        assert set(service) == allowed, name


def test_translation_keeps_compose_and_replaces_the_host_endpoints() -> None:
    specs, host = compose.container_specs(compose.load(ENV), "ct")
    assert sorted(host) == ["kafka", "postgres", "redis"]
    assert specs[0].service == "init"
    assert {s.service for s in specs} == {"init", "ingest", "features", "trainer", "assigner"}
    by_name = {s.service: s for s in specs}
    assigner = by_name["assigner"]
    assert assigner.environment["STABLESEG_KAFKA_BOOTSTRAP"] == "127.0.0.1:1111"
    assert assigner.environment["STABLESEG_ASSIGNER_PORT"] == assigner.environment["HEALTH_PORT"] == "4004"
    assert assigner.environment["STABLESEG_ARTIFACT_URI"] == "file:///var/lib/stableseg/artifacts"  # from compose
    assert "-v" in assigner.args and "ct-artifacts:/var/lib/stableseg/artifacts:ro" in assigner.args
    assert assigner.args[-2:] == ["stableseg:0.1.0", "assigner"]
    assert "-p" not in assigner.args  # host network: nothing to publish
    assert by_name["ingest"].depends_on["init"] == "service_completed_successfully"
    assert by_name["init"].args[by_name["init"].args.index("--entrypoint") + 1].startswith('["sh", "-c"')


def test_compose_hardening_matches_the_k8s_manifests() -> None:
    specs, _ = compose.container_specs(compose.load(ENV), "ct")
    contracts = k8s_contracts()
    assert set(contracts) == {s.service for s in specs}
    for spec in specs:
        assert spec.read_only == contracts[spec.service].read_only, spec.service
        assert "--cap-drop" in spec.args and "no-new-privileges:true" in spec.args, spec.service


def test_interpolation_defaults_required_and_escapes() -> None:
    assert compose.interpolate("${A:-x}/${B-y}/$$C/${D}", {"A": "", "B": ""}) == "x//$C/"
    with pytest.raises(compose.ComposeError, match=r"services\.x: variable TOKEN is required: set it"):
        compose.interpolate({"services": {"x": "${TOKEN:?set it}"}}, {})


def test_unsupported_compose_keys_are_refused() -> None:
    with pytest.raises(compose.ComposeError, match=r"services\.x: \['privileged'\]"):
        compose.container_spec("x", {"image": "i", "privileged": True}, "ct", set())
