"""Kafka connection security: the ``kafka_*`` security settings turned into each client library's options.

One function, ``kafka_security(settings, client)``, serves every construction site:

- ``"aiokafka"``: ``AIOKafkaProducer`` / ``AIOKafkaConsumer`` keyword arguments (``ssl_context`` built with
  ``aiokafka.helpers.create_ssl_context``);
- ``"kafka-python"``: ``KafkaAdminClient`` / ``KafkaConsumer`` / ``KafkaProducer`` keyword arguments (file paths);
- ``"faust"``: ``faust.App`` keyword arguments (``broker_credentials``: ``SSLCredentials`` or ``SASLCredentials``).

PLAINTEXT gives ``{}``, so unsecured set-ups construct their clients exactly as before. ``kafka_ssl_cafile``
unset means the system trust store; a client certificate and key make it mutual TLS. Hostnames are verified.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal

from shared.config import Settings

KafkaClient = Literal["aiokafka", "kafka-python", "faust"]


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context: the configured CA (or the system trust store), the client pair when given."""
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
    )


def _sasl(settings: Settings) -> dict[str, Any]:
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    return {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password}


def kafka_security(settings: Settings, client: KafkaClient) -> dict[str, Any]:
    """Keyword arguments that make ``client`` connect with the configured protocol, TLS files and SASL login."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    tls = protocol.endswith("SSL")
    sasl = protocol.startswith("SASL")
    if client == "faust":
        return {"broker_credentials": _faust_credentials(settings, tls, sasl)}
    options: dict[str, Any] = {"security_protocol": protocol, **(_sasl(settings) if sasl else {})}
    if tls and client == "aiokafka":
        options["ssl_context"] = kafka_ssl_context(settings)
    elif tls:
        files = {"ssl_cafile": settings.kafka_ssl_cafile, "ssl_certfile": settings.kafka_ssl_certfile,
                 "ssl_keyfile": settings.kafka_ssl_keyfile}
        options |= {k: str(v) for k, v in files.items() if v} | {"ssl_check_hostname": True}
    return options


def _faust_credentials(settings: Settings, tls: bool, sasl: bool) -> Any:
    import faust

    context = kafka_ssl_context(settings) if tls else None
    if not sasl:
        return faust.SSLCredentials(context)
    login = _sasl(settings)
    return faust.SASLCredentials(username=login["sasl_plain_username"], password=login["sasl_plain_password"],
                                 ssl_context=context, mechanism=login["sasl_mechanism"])
