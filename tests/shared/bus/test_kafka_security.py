"""Kafka security settings: the option mapping for aiokafka, kafka-python and faust, and services streaming
through a real TLS listener with mutual TLS (a TLS proxy in front of tansu, see tls_support)."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi.testclient import TestClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pydantic import SecretStr

from services.features.app import create_app as create_features
from services.ingest.app import create_app as create_ingest
from shared.bus import ensure_topics, missing_topics, topic_specs
from shared.bus.security import kafka_security
from shared.config import Settings
from shared.feature_store import FeatureStore
from shared.stack import free_port
from tests.helpers import wait_for
from tests.tls_support import AdvertisingBroker, Certs, TlsProxy, make_certs

pytestmark = pytest.mark.xdist_group("kafka-tls")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _sasl_ssl(certs: Certs) -> Settings:
    return Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                    kafka_sasl_username="svc", kafka_sasl_password=SecretStr("pw-123"), kafka_ssl_cafile=certs.ca,
                    kafka_ssl_certfile=certs.client_cert, kafka_ssl_keyfile=certs.client_key)


def test_plaintext_adds_nothing() -> None:
    for client in ("aiokafka", "kafka-python", "faust"):
        assert kafka_security(Settings(), client) == {}


def test_aiokafka_options(certs: Certs) -> None:
    options = kafka_security(_sasl_ssl(certs), "aiokafka")
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext) and context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "svc", "sasl_plain_password": "pw-123"}

    async def construct() -> None:  # both accept the options (constructors validate them, no connection made)
        all_options = kafka_security(_sasl_ssl(certs), "aiokafka")
        AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **all_options)
        AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **all_options)

    asyncio.run(construct())


def test_kafka_python_options(certs: Certs) -> None:
    options = kafka_security(_sasl_ssl(certs), "kafka-python")
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "svc", "sasl_plain_password": "pw-123", "ssl_cafile": str(certs.ca),
                       "ssl_certfile": str(certs.client_cert), "ssl_keyfile": str(certs.client_key),
                       "ssl_check_hostname": True}
    for client in (KafkaAdminClient, KafkaConsumer, KafkaProducer):
        assert set(options) <= set(client.DEFAULT_CONFIG), client
    sasl_plain = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
                          kafka_sasl_password=SecretStr("p"))
    assert "ssl_cafile" not in kafka_security(sasl_plain, "kafka-python")


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL", "SASL_PLAINTEXT"])
def test_faust_credentials_become_the_same_aiokafka_options(certs: Certs, protocol: str) -> None:
    settings = _sasl_ssl(certs).model_copy(update={"kafka_security_protocol": protocol})
    if protocol == "SASL_PLAINTEXT":
        settings = settings.model_copy(update={"kafka_ssl_cafile": None, "kafka_ssl_certfile": None,
                                               "kafka_ssl_keyfile": None})
    app = faust.App(f"t-{uuid.uuid4().hex[:6]}", broker="kafka://127.0.0.1:1", **kafka_security(settings, "faust"))
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    expected = kafka_security(settings, "aiokafka")
    assert auth["security_protocol"] == expected["security_protocol"] == protocol
    assert isinstance(auth.get("ssl_context"), ssl.SSLContext) == protocol.endswith("SSL")
    if protocol.startswith("SASL"):
        assert (auth["sasl_mechanism"], auth["sasl_plain_username"], auth["sasl_plain_password"]) == (
            "SCRAM-SHA-512", "svc", "pw-123")


@pytest.fixture
def tls_bootstrap(tmp_path: Path, certs: Certs) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a mutual-TLS Kafka listener (the broker advertises it, so every connection uses it);
    a broker per test: the aiokafka and faust engines use one group id with different assignors."""
    tls_port, plain_port = free_port(), free_port()
    broker = AdvertisingBroker(plain_port, tmp_path / "tls-broker", advertised=tls_port)
    broker.start()
    proxy = TlsProxy(tls_port, plain_port, certs)
    proxy.start()
    yield f"127.0.0.1:{tls_port}"
    proxy.stop()
    broker.stop()


def _tls(settings: Settings, bootstrap: str, certs: Certs, **extra: object) -> Settings:
    tls = {"kafka_bootstrap": bootstrap, "kafka_security_protocol": "SSL", "kafka_ssl_cafile": certs.ca,
           "kafka_ssl_certfile": certs.client_cert, "kafka_ssl_keyfile": certs.client_key}
    return Settings(**{**settings.model_dump(exclude={"kafka_bootstrap"}), **tls, **extra})


def test_the_listener_refuses_clients_without_tls_or_without_a_client_certificate(tls_bootstrap: str, certs: Certs
                                                                                  ) -> None:
    with pytest.raises(Exception):  # noqa: B017 - plaintext to a TLS port: kafka-python gives up on the bootstrap
        missing_topics.retry_with(stop=lambda _: True)(tls_bootstrap, ["x"])
    no_cert = Settings(kafka_bootstrap=tls_bootstrap, kafka_security_protocol="SSL", kafka_ssl_cafile=certs.ca)
    with pytest.raises(Exception):  # noqa: B017 - the proxy demands a client certificate
        missing_topics.retry_with(stop=lambda _: True)(tls_bootstrap, ["x"], kafka_security(no_cert, "kafka-python"))


@pytest.mark.parametrize("engine", ["aiokafka", "faust"])
def test_services_stream_through_mutual_tls(settings: Settings, tls_bootstrap: str, certs: Certs, engine: str
                                            ) -> None:
    secured = _tls(settings, tls_bootstrap, certs, features_engine=engine)
    ensure_topics(tls_bootstrap, topic_specs(secured), security=kafka_security(secured, "kafka-python"))
    shop = f"tls-{engine}-{uuid.uuid4().hex[:6]}"
    records = [{"shop_id": shop, "product_id": f"P{m}", "year": 2024, "month": m, "sales_qty": m} for m in range(1, 7)]
    with (TestClient(create_ingest(secured, topic_check_interval=0.2)) as ingest,
          TestClient(create_features(secured, keeper_interval=0.5)) as features):
        wait_for(lambda: ingest.get("/readyz").status_code == 200, what="ingest ready over TLS")
        wait_for(lambda: features.get("/readyz").status_code == 200, what="features ready over TLS")
        answer = ingest.post("/v1/sales", json=records)
        assert answer.status_code == 200 and answer.json()["accepted"] == 6, answer.text
        store = FeatureStore(secured.redis_url)
        try:
            stored = wait_for(lambda: store.get(shop), what="features computed from records read over TLS")
        finally:
            store.close()
    assert stored["as_of"] == "2024-06"


def test_certificate_files_must_exist(tmp_path: Path) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "missing.pem")
    with pytest.raises(FileNotFoundError):
        kafka_security(settings, "aiokafka")
