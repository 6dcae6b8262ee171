"""Redis AUTH + TLS (``rediss://`` and the CA / client certificate settings) against the machine's redis-server 7
started with ``--tls-port`` and a generated certificate: the features service streams into it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from services.features.app import create_app as create_features
from services.ingest.app import create_app as create_ingest
from shared.config import Settings
from shared.feature_store import FeatureStore
from shared.stack import free_port
from tests.tls_support import Certs, make_certs

REDIS7 = "/usr/bin/redis-server"
PASSWORD = "redis-pa55-for-tls-test"
pytestmark = pytest.mark.xdist_group("redis-tls")


@pytest.fixture(autouse=True)
def _debian_redis() -> None:
    """Fail (never skip) without Debian's redis-server 7 (.ci/run installs it)."""
    assert shutil.which(REDIS7) is not None, f"Debian redis-server 7 is required at {REDIS7} (apt: redis-server)"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Certs]]:
    certs = make_certs(tmp_path_factory.mktemp("redis-certs"))
    port = free_port()
    process = subprocess.Popen(
        [REDIS7, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs.server_cert),
         "--tls-key-file", str(certs.server_key), "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "yes",
         "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield port, certs
    process.terminate()
    process.wait(10)


def _settings(settings: Settings, port: int, certs: Certs, password: str = PASSWORD) -> Settings:
    values = settings.model_dump(exclude={"redis_url"}) | {"redis_url": f"rediss://:{password}@127.0.0.1:{port}/0",
              "redis_ssl_cafile": certs.ca, "redis_ssl_certfile": certs.client_cert,
              "redis_ssl_keyfile": certs.client_key}
    return Settings(**values)


def _ping(url: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with redis.Redis.from_url(url, socket_timeout=2) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_tls_redis_needs_the_password_the_ca_and_a_client_certificate(settings: Settings, tls_redis) -> None:
    port, certs = tls_redis
    secured = _settings(settings, port, certs)
    assert _ping(secured.redis_url)
    with pytest.raises(redis.AuthenticationError):
        _ping(_settings(settings, port, certs, password="wrong").redis_url)
    no_client_cert = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={certs.ca}"
    with pytest.raises(redis.ConnectionError):
        _ping(no_client_cert, timeout=0)
    with pytest.raises(redis.ConnectionError):
        _ping(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", timeout=0)

    async def async_ping() -> bool:  # the assigner's and the trainer's async clients
        client = aioredis.Redis.from_url(secured.redis_url, socket_timeout=5)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    assert asyncio.run(async_ping())


def test_features_stream_into_tls_redis_and_logs_keep_the_password(
    settings: Settings, topics: dict[str, int], tls_redis, capfd: pytest.CaptureFixture[str]
) -> None:
    port, certs = tls_redis
    secured = _settings(settings, port, certs)
    shop = f"rtls-{uuid.uuid4().hex[:6]}"
    records = [{"shop_id": shop, "product_id": "P1", "year": 2024, "month": m, "sales_qty": 2 * m} for m in (1, 2, 3)]
    with (TestClient(create_ingest(secured, topic_check_interval=0.2)) as ingest,
          TestClient(create_features(secured, keeper_interval=0.5)) as features):
        deadline = time.monotonic() + 60
        while features.get("/readyz").status_code != 200 or ingest.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, features.get("/readyz").json()
            time.sleep(0.2)
        assert ingest.post("/v1/sales", json=records).json()["accepted"] == 3
        store = FeatureStore(secured.redis_url)
        try:
            while (stored := store.get(shop)) is None:
                assert time.monotonic() < deadline, "features never reached the TLS Redis"
                time.sleep(0.2)
        finally:
            store.close()
    assert stored["as_of"] == "2024-03"
    out, err = capfd.readouterr()
    assert PASSWORD not in out + err  # whatever the log level the suite left configured
