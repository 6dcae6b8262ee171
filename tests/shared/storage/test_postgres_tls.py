"""PostgreSQL with a password (SCRAM) over TLS, chosen by ``sslmode`` in STABLESEG_DATABASE_URL: a private
PostgreSQL 15 cluster (initdb in a tmp dir, ssl=on with a generated certificate) runs migrations and the registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.config import Settings
from shared.stack import free_port
from shared.storage import Registry, make_engine, upgrade_database
from tests.tls_support import Certs, make_certs

BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "pg-pa55-for-tls-test"
SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
pytestmark = pytest.mark.xdist_group("postgres-tls")


@pytest.fixture(autouse=True)
def _postgres_binaries() -> None:
    """Fail (never skip) when the server binaries this test runs are missing."""
    assert (BIN / "initdb").exists(), f"PostgreSQL 15 server binaries are required ({BIN}/initdb missing)"


def _as_postgres(*command: str) -> None:
    """PostgreSQL refuses to run as root: as root, run as the ``postgres`` user."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # no pipes: the server started by pg_ctl would inherit them and keep run() waiting
    subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, Certs]]:
    root = Path(tempfile.mkdtemp(prefix="stableseg-pg-"))  # not under pytest's tmp: the postgres user must reach it
    try:
        yield from _cluster(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _cluster(root: Path) -> Iterator[tuple[int, Certs]]:
    certs = make_certs(root / "certs")
    root.chmod(0o755)
    (root / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for path in [root / "pw", *(root / "certs").iterdir()]:
            shutil.chown(path, "postgres")
    certs.server_key.chmod(0o600)
    _as_postgres(str(BIN / "initdb"), "-D", str(root / "data"), "-U", "stableseg", f"--pwfile={root / 'pw'}",
                 "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
    port = free_port()
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={certs.server_cert} "
               f"-c ssl_key_file={certs.server_key} -c fsync=off")
    _as_postgres(str(BIN / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "pg.log"), "-w", "-o", options,
                 "start")
    yield port, certs
    _as_postgres(str(BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop")


def test_registry_over_tls_with_a_password_from_a_file(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    port, certs = server
    url = (f"postgresql+psycopg://stableseg:{PASSWORD}@127.0.0.1:{port}/postgres"
           f"?sslmode=verify-full&sslrootcert={certs.ca}")
    (tmp_path / "db-url").write_text(url + "\n")
    monkeypatch.setenv("STABLESEG_DATABASE_URL_FILE", str(tmp_path / "db-url"))
    settings = Settings()
    upgrade_database(settings.effective_database_url)
    registry = Registry(settings.effective_database_url)
    try:
        assert registry.segments.get_next_segment_number() >= 1
    finally:
        registry.close()
    engine = make_engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text(SSL_IN_USE)).scalar() is True
    finally:
        engine.dispose()
    assert PASSWORD not in str(settings.masked()["database_url"])


@pytest.mark.parametrize(
    ("query", "password", "problem"),
    [("sslmode=disable", PASSWORD, None), ("sslmode=require", "wrong", "password authentication failed"),
     ("sslmode=verify-full&sslrootcert={other}", PASSWORD, "certificate verify failed")],
)
def test_sslmode_and_password_are_enforced(server, tmp_path: Path, query: str, password: str, problem: str | None
                                           ) -> None:
    port, _ = server
    other = make_certs(tmp_path / "other").ca  # a CA that did not sign the server certificate
    engine = make_engine(f"postgresql+psycopg://stableseg:{password}@127.0.0.1:{port}/postgres?"
                         + query.format(other=other))
    try:
        if problem is None:
            with engine.connect() as conn:
                assert conn.execute(sa.text(SSL_IN_USE)).scalar() is False
        else:
            with pytest.raises(sa.exc.OperationalError, match=problem), engine.connect():
                pass
    finally:
        engine.dispose()


def test_trainer_process_order_keras_first_then_tls(server) -> None:
    """The trainer imports TensorFlow, then connects: a fresh process doing exactly that must not abort."""
    port, _ = server
    url = f"postgresql+psycopg://stableseg:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=require"
    script = ("from shared.model.autoencoder import import_keras; import_keras(); "
              "from shared.storage import make_engine; import sqlalchemy as sa; "
              f"c = make_engine({url!r}).connect(); print(c.execute(sa.text({SSL_IN_USE!r})).scalar())")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 0 and result.stdout.strip().endswith("True"), result.stderr[-2000:]
