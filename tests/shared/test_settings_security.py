"""Secrets in Settings: ``<NAME>_FILE`` variants, masking in ``stableseg config``, log redaction, connection checks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli.main import app as cli
from shared.config import Settings, get_settings, secret_fields, secret_values
from shared.logging import configure_logging, get_logger

SECRETS = {
    "STABLESEG_ADMIN_TOKEN": "adm1n-secret-value",
    "STABLESEG_INGEST_TOKEN": "ingest-secret-value",
    "STABLESEG_KAFKA_SASL_PASSWORD": "kafka-secret-value",
    "STABLESEG_DATABASE_URL": "postgresql+psycopg://app:db-secret-value@db:5432/app",
    "STABLESEG_REDIS_URL": "rediss://:redis-secret-value@redis:6380/0",
}
PLAIN = {"STABLESEG_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "STABLESEG_KAFKA_SASL_USERNAME": "svc"}


def _values(env: dict[str, str]) -> list[str]:
    return [v if "://" not in v else v.split(":")[-2].split("@")[0] for v in env.values()]


def test_secret_fields_cover_tokens_passwords_and_urls() -> None:
    assert set(secret_fields()) == {"admin_token", "ingest_token", "kafka_sasl_password", "database_url", "redis_url"}


def test_every_secret_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        path = tmp_path / name
        path.write_text(value + "\n")  # mounted secrets often end in a newline
        monkeypatch.setenv(f"{name}_FILE", str(path))
    for name, value in PLAIN.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.admin_token.get_secret_value() == SECRETS["STABLESEG_ADMIN_TOKEN"]
    assert settings.ingest_token.get_secret_value() == SECRETS["STABLESEG_INGEST_TOKEN"]
    assert settings.kafka_sasl_password.get_secret_value() == SECRETS["STABLESEG_KAFKA_SASL_PASSWORD"]
    assert settings.database_url == SECRETS["STABLESEG_DATABASE_URL"]
    assert settings.redis_url == SECRETS["STABLESEG_REDIS_URL"]
    assert sorted(secret_values(settings)) == sorted(_values(SECRETS))


def test_a_secret_and_its_file_together_or_an_unreadable_file_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABLESEG_ADMIN_TOKEN", "x")
    monkeypatch.setenv("STABLESEG_ADMIN_TOKEN_FILE", str(tmp_path / "t"))
    with pytest.raises(ValueError, match="STABLESEG_ADMIN_TOKEN and STABLESEG_ADMIN_TOKEN_FILE are both set"):
        Settings()
    monkeypatch.delenv("STABLESEG_ADMIN_TOKEN")
    with pytest.raises(ValueError, match=r"STABLESEG_ADMIN_TOKEN_FILE: cannot read .*/t: No such file"):
        Settings()


def test_stableseg_config_masks_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, **PLAIN}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        plain = CliRunner().invoke(cli, ["config"])
        as_json = CliRunner().invoke(cli, ["config", "--json"])
    finally:
        get_settings.cache_clear()
    assert plain.exit_code == 0 and as_json.exit_code == 0, plain.output + as_json.output
    for secret in _values(SECRETS):
        assert secret not in plain.output and secret not in as_json.output
    shown = json.loads(as_json.output)
    assert shown["admin_token"] == shown["ingest_token"] == shown["kafka_sasl_password"] == "********"
    assert shown["database_url"] == "postgresql+psycopg://app:***@db:5432/app"
    assert shown["redis_url"] == "rediss://:***@redis:6380/0"
    assert shown["kafka_sasl_username"] == "svc"


def test_logs_redact_secret_values() -> None:
    out = io.StringIO()
    configure_logging("json", "INFO", ["s3cr3t-token"])
    try:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=out))
        get_logger("t").info("oops", error="connect failed: Bearer s3cr3t-token rejected", n=3)
    finally:
        configure_logging("console", "INFO")
    line = json.loads(out.getvalue())
    assert line["error"] == "connect failed: Bearer [redacted] rejected" and line["n"] == 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "kafka_sasl_username and kafka_sasl_password: required"),
        ({"kafka_ssl_cafile": "/ca.pem"}, "kafka_ssl_\\*: only used with SSL or SASL_SSL, not PLAINTEXT"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/c.pem"}, "give both or neither"),
        ({"redis_ssl_cafile": "/ca.pem"}, "redis_ssl_\\*: need a TLS redis_url"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_connection_settings_that_cannot_work_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_redis_tls_files_travel_in_the_url() -> None:
    settings = Settings(redis_url="rediss://:pw@r:6380/0?ssl_cert_reqs=required", redis_ssl_cafile="/ca.pem",
                        redis_ssl_certfile="/c.pem", redis_ssl_keyfile="/k.pem")
    assert settings.redis_url == (
        "rediss://:pw@r:6380/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fca.pem&ssl_certfile=%2Fc.pem&ssl_keyfile=%2Fk.pem"
    )
