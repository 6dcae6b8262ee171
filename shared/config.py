"""One settings object for every component: environment variables prefixed ``STABLESEG_``."""

from __future__ import annotations

import dataclasses
import inspect
import os
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

T = TypeVar("T")


class Settings(BaseSettings):
    """Effective configuration. Every field can be set as ``STABLESEG_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="STABLESEG_", env_file=None, extra="ignore")

    # --- locations -------------------------------------------------------------------------------
    data_dir: Path = Field(Path(".stableseg"), description="pids, logs, SQLite file, Redis AOF")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/stableseg.db")
    artifact_uri: str | None = Field(None, description="fsspec URL of the artifact store; default <data_dir>/artifacts")

    # --- infrastructure --------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:19092"
    redis_url: str = "redis://127.0.0.1:16379/0"
    broker_port: int = Field(19092, description="embedded broker port (stack up)")
    redis_port: int = Field(16379, description="embedded Redis port (stack up)")
    sales_partitions: int = Field(4, ge=1, description="partitions of sales.monthly and its derived topics")
    segment_partitions: int = Field(4, ge=1, description="partitions of segments.changes")
    # every group consumer (trainer, assigner, both features engines): kept short, the embedded broker's group
    # joins wait for the rebalance timeout
    kafka_session_timeout_ms: int = Field(10_000, ge=1, description="Kafka group session timeout")
    kafka_heartbeat_interval_ms: int = Field(3_000, ge=1, description="Kafka group heartbeat interval")
    kafka_rebalance_timeout_ms: int = Field(20_000, ge=1, description="Kafka group rebalance timeout")
    # every service's broker link (shared.bus.link.BrokerLink)
    kafka_connect_retry_min_seconds: float = Field(0.2, gt=0, description="broker link: first wait before connecting "
                                                   "again (doubled after each further failure ...)")
    kafka_connect_retry_max_seconds: float = Field(5.0, gt=0, description="... up to this)")
    kafka_send_retry_min_seconds: float = Field(0.2, gt=0, description="broker link: first wait before a failed "
                                                "send is retried (doubled after each further failure ...)")
    kafka_send_retry_max_seconds: float = Field(3.0, gt=0, description="... up to this)")
    kafka_topic_check_seconds: float = Field(5.0, gt=0, description="broker link (every service): the contract "
                                             "topics are checked (and re-created) this often ...")
    kafka_topic_retry_seconds: float = Field(1.0, gt=0, description="... and this often while one is missing")
    # redis layout and cluster (feature store, assigner)
    redis_cluster: bool = Field(False, description="redis_url names one node of a Redis Cluster: every component "
                                "uses redis-py's cluster client")
    feature_store_slot_groups: int = Field(16, ge=1, le=16384, description="slot groups (hash tags) the feature "
                                           "store spreads retailers over; a change needs `stableseg features rebuild`")

    # --- services --------------------------------------------------------------------------------
    bind_host: str = Field("127.0.0.1", description="address the HTTP services listen on (0.0.0.0 in containers)")
    assigner_port: int = 8000
    ingest_port: int = 8001
    features_port: int = 8002
    trainer_port: int = 8003
    admin_token: SecretStr | None = None
    ingest_max_records: int = Field(10_000, ge=1, description="records per POST /v1/sales")
    ingest_max_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="body size limit of POST /v1/sales")
    ingest_ack_timeout_seconds: float = Field(
        10.0, gt=0, description="POST /v1/sales waits this long for broker acks, then answers 503"
    )
    log_format: str = Field("auto", description="auto | json | console")
    log_level: str = "INFO"

    # --- features --------------------------------------------------------------------------------
    feature_set: str = "behaviour-v4"
    feature_store_sets: list[str] = Field(
        default_factory=list,
        description="feature sets the features service keeps for every retailer, a JSON list; empty: every "
        "registered set. Must include feature_set; after a change run `stableseg features rebuild`",
    )
    min_tenure_years: float = 1.0
    min_avg_active_months_per_year: float = 6.0
    partial_years: Literal["prorate", "last", "count"] = Field(
        "last", description="eligibility: the last active year counts by the share the retailer spans (last), the "
        "first and the last do (prorate), or every year whole (count: the case study's rule, under which every "
        "January's first month drops retailers)",
    )
    features_batch_records: int = Field(5000, ge=1, description="max records the features service applies per batch")
    features_gc_threshold: int = Field(
        50_000, ge=0, description="features worker: container allocations between the garbage collector's young "
        "collections (CPython's default, 700, made each batch's records be walked many times over); 0 keeps the "
        "interpreter's"
    )
    month_close_min_share: float = Field(
        0.8, ge=0.0, le=1.0, description="months.closed: a month's retailers must reach this share of the month before"
    )
    month_close_grace_seconds: float = Field(
        900.0, ge=0.0, description="months.closed: ... or this long since the month was queued (it lost retailers)"
    )
    month_close_quiet_seconds: float = Field(
        5.0, ge=0.0, description="months.closed: the store must stay settled (caught up, no recompute) this long"
    )
    features_consumer_poll_seconds: float = Field(
        0.5, gt=0, description="features consumer: a fetch waits this long for records (faust: a batch's window, "
        "and the idle duties' period)"
    )
    features_consumer_fetch_grace_seconds: float = Field(2.0, gt=0, description="aiokafka: a fetch is given up "
                                                         "after the poll time plus this")
    features_consumer_commit_seconds: float = Field(
        2.0, gt=0, description="Kafka commits (lag tooling only; Redis holds the offsets) at most this often"
    )
    features_consumer_idle_recompute_seconds: float = Field(5.0, ge=0, description="idle this long: recompute the "
                                                            "retailers a crash left dirty")
    features_consumer_retry_min_seconds: float = Field(0.5, gt=0, description="after an error: first wait for a "
                                                       "new consumer (doubled after each further error ...)")
    features_consumer_retry_max_seconds: float = Field(10.0, gt=0, description="... up to this)")
    features_consumer_stop_seconds: float = Field(
        5.0, gt=0, description="features consumer: leaving the group waits at most this long on shutdown ..."
    )
    features_consumer_restart_stop_seconds: float = Field(15.0, gt=0, description="... and before a restart")
    features_consumer_max_poll_interval_ms: int = Field(
        600_000, ge=1, description="aiokafka: the longest pause between fetches before the group drops the member"
    )
    features_redis_socket_timeout_seconds: float = Field(30.0, gt=0, description="features worker: a Redis command "
                                                         "is given up after this (then retried)")
    features_redis_connect_timeout_seconds: float = Field(5.0, gt=0, description="features worker: connecting to "
                                                          "Redis is given up after this (then retried)")
    features_redis_retry_min_seconds: float = Field(0.1, gt=0, description="features processor: Redis unavailable: "
                                                    "first wait before a retry (doubled after each failure ...)")
    features_redis_retry_max_seconds: float = Field(2.0, gt=0, description="... up to this)")
    features_rebuild_redis_timeout_seconds: float = Field(60.0, gt=0, description="`stableseg features rebuild`: "
                                                          "a Redis command (a wipe is one) is given up after this")
    features_producer_request_timeout_ms: int = Field(15_000, ge=1, description="features worker: a produce "
                                                      "request is given up after this (then sent again until acked)")
    features_engine: Literal["aiokafka", "faust"] = Field(
        "aiokafka", description="features consumer: aiokafka group consumer, or a faust-streaming app (same processor)"
    )
    pipeline_partition_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="pipeline run: a sales CSV up to this size is read in memory; a "
        "larger one out of core, in partitions of shops of about this many CSV bytes each (same features)"
    )

    # --- model (profile "auto": derived from the data; "seed": the case study's exact settings) ----------
    profile: Literal["auto", "seed"] = Field(
        "auto", description="auto: schedule and density derived from the data, model chosen by evidence; seed: the "
        "case study's fixed settings (SEED_PROFILE), latent space served"
    )
    seed: int = 42
    latent_dim: int = Field(5, ge=1)
    l2: float = Field(1e-4, ge=0.0)
    learning_rate: float = Field(1e-3, gt=0.0)
    validation_split: float = Field(0.35, ge=0.0, lt=1.0)
    epochs: int | None = Field(None, ge=1, description="autoencoder epoch budget; None: derived from the rows")
    batch_size: int | None = Field(None, ge=1, description="autoencoder batch size; None: derived from the rows")
    patience: int = Field(10, ge=0, description="early stopping on validation loss (best weights restored)")
    train_target_steps: int = Field(2000, ge=1, description="derived schedule: gradient steps the epochs aim for")
    train_batch_rows: int = Field(50, ge=1, description="derived schedule: batch = training rows / this")
    train_batch_min: int = Field(32, ge=1)
    train_batch_max: int = Field(512, ge=1)
    train_epochs_min: int = Field(30, ge=1)
    train_epochs_max: int = Field(300, ge=1)
    train_steps_per_execution: int = Field(
        32, ge=1, description="autoencoder: gradient steps Keras runs per call into the compiled graph (speed only: "
        "the same batches in the same order, the same weights)"
    )
    min_cluster_size: int | None = Field(
        None, ge=2, description="HDBSCAN min_cluster_size; None: min_cluster_share of the eligible retailers, "
        "within [min_cluster_size_floor, min_cluster_size_ceiling]"
    )
    min_cluster_share: float = Field(0.01, gt=0.0, le=0.5)
    min_cluster_size_floor: int = Field(15, ge=2)
    min_cluster_size_ceiling: int = Field(500, ge=2)
    min_samples: int | None = Field(
        None, ge=1, description="HDBSCAN min_samples; None: min_cluster_size / 10, at least min_samples_floor"
    )
    min_samples_floor: int = Field(5, ge=1)
    cluster_selection_method: Literal["eom", "leaf"] = "eom"
    cluster_selection_epsilon: float = Field(0.0, ge=0.0)
    raw_baseline: bool = Field(True, description="also cluster the scaled raw features (a candidate space)")
    raw_baseline_max_rows: int | None = Field(20_000, ge=100, description="rows the raw-feature baseline is fitted on")
    autoencoder_max_rows: int | None = Field(
        200_000, ge=100, description="the autoencoder is trained on at most this many rows (evenly spaced in shop_id "
        "order) and embeds every row; None: trained on every row (the epoch floor makes 1M rows ~5x the cost)"
    )
    autoencoder_members: int | None = Field(
        None, ge=1, description="autoencoders (seeded seed x members ... seed x members + members - 1) whose latent "
        "spaces, concatenated, are the served embedding: an ensemble depends less on the seed than one autoencoder; "
        "1: one autoencoder (seeded seed); None: autoencoder_ensemble_rows / the eligible retailers, within "
        "[autoencoder_members_min, autoencoder_members_max] (more members where the data are few)"
    )
    autoencoder_members_min: int = Field(4, ge=1)
    autoencoder_members_max: int = Field(8, ge=1)
    autoencoder_ensemble_rows: int = Field(
        60_000, ge=1, description="the derived ensemble has about this many member-rows: 8 members up to 7,500 "
        "eligible retailers, 4 from 15,000 (a member's cost is its gradient steps, fewer rows mean smaller batches)"
    )
    autoencoder_member_rows: int = Field(
        15_000, ge=100, description="each member trains on this many evenly spaced rows (all when fewer), or on its "
        "share of the autoencoder's rows (autoencoder_max_rows / members) when that is more: the ensemble costs "
        "about one autoencoder on every row once there are more than members x this many"
    )
    cluster_fit_max_rows: int | None = Field(
        100_000, ge=100, description="the latent-space HDBSCAN is fitted on at most this many rows (evenly spaced in "
        "shop_id order) and predicts the rest; None: fitted on every row. 100,000 keeps every dataset the quality "
        "grid uses fitted in full; the README's Scale section measures the agreement above it"
    )
    predict_threads: int = Field(
        1, ge=1, description="threads the space-tree queries of a batch cluster prediction run on (the query "
        "releases the GIL; the labels are the same on any number): worth raising only with idle cores (the assigner "
        "pod has one; on the shared 2-core machine 2 threads gave no gain at load 6-11)"
    )
    min_eligible_retailers: int = Field(
        30, ge=2, description="fewer eligible retailers than this cannot support segments (exit 4 / rejected)"
    )
    selection_density_factors: list[float] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0],
        description="model selection: min_cluster_size candidates as factors of the derived value (JSON list)",
    )
    selection_sample_rows: int = Field(4000, ge=100, description="model selection: rows the candidates are scored on")
    selection_bootstrap_rounds: int = Field(4, ge=1, description="model selection: resamples per candidate")
    selection_bootstrap_fraction: float = Field(0.8, gt=0.0, lt=1.0)
    selection_seed_agreement_min: float = Field(
        0.8, ge=0.0, le=1.0, description="a latent candidate whose seed agreement (ARI between the ensemble's two "
        "halves, or with one autoencoder against one of the next seed) is below this is not served"
    )
    selection_score_tolerance: float = Field(
        0.01, ge=0.0, le=1.0, description="model selection: scores this close to the best count as a tie, which "
        "the latent space and the derived density (factor 1) win"
    )

    # --- trainer ---------------------------------------------------------------------------------
    retrain_on_month_close: bool = True
    retrain_debounce_seconds: float = 10.0
    train_settle_deadline_seconds: float = Field(
        120.0, ge=0.0, description="a training waits up to this long for a settled feature store, then trains and "
        "logs why it did not wait longer"
    )
    gate_min_clusters: int = 2
    gate_max_noise_ratio: float = 0.5
    gate_max_largest_share: float = 0.9
    trainer_lock_ttl_seconds: float = Field(
        30.0, gt=0, description="training lease across replicas; renewed every ttl/3, lapses after a crash"
    )

    # --- assigner --------------------------------------------------------------------------------
    match_min_jaccard: float = 0.5
    match_stable_jaccard: float = 0.75
    match_split_min_share: float = 0.25
    match_weak_strength: float = Field(0.05, ge=0.0, le=1.0, description="hysteresis: weaker switches are held")
    match_noise_grace: bool = Field(True, description="hysteresis: one noisy retrain keeps a stable retailer")
    match_online_moves: bool = Field(
        False, description="online (features.updated) re-assignment may take a retailer's segment away (a move to "
        "another segment, or ineligible); off: only a retrain does (new and noise retailers still join online)"
    )

    # --- security: write auth, HTTP limits, secured Kafka / Redis connections ----------------------
    # Every secret here (and database_url, redis_url) may instead be read from a file named in
    # STABLESEG_<NAME>_FILE (mounted secrets); see SecretFilesSource below.
    ingest_token: SecretStr | None = Field(
        None, description="when set, POST /v1/sales needs `Authorization: Bearer <token>` (401 without, 403 wrong)"
    )
    allow_unauthenticated: bool = Field(
        False, description="let a service listen on a non-loopback bind_host without the token guarding its write "
        "routes (ingest: ingest_token, assigner: admin_token); without it such a start is refused",
    )
    http_max_body_bytes: int = Field(1024 * 1024, ge=1024, description="body size limit of every POST but ingest's")
    http_body_timeout_seconds: float = Field(
        30.0, gt=0, description="a request body must arrive completely within this, else 408 (slow clients)"
    )
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="a connection must deliver a request's headers within this, else it is closed"
    )
    http_keepalive_seconds: float = Field(5.0, gt=0, description="idle keep-alive connections are closed after this")
    http_max_connections: int | None = Field(
        1000, ge=1, description="concurrent connections per service; more are answered 503"
    )
    ingest_rate_limit: str = Field(
        "50/second", description="POST /v1/sales per client address (limits notation, e.g. 50/second, 1000/minute; "
        "empty: off); above it 429 with Retry-After",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle (PEM) that signed the broker certificates")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="client private key (PEM) for mutual TLS")
    redis_ssl_cafile: Path | None = Field(None, description="with a rediss:// URL: CA bundle (PEM) of the server")
    redis_ssl_certfile: Path | None = Field(None, description="with a rediss:// URL: client certificate (PEM)")
    redis_ssl_keyfile: Path | None = Field(None, description="with a rediss:// URL: client private key (PEM)")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'stableseg.db').resolve()}"

    @property
    def effective_artifact_uri(self) -> str:
        return self.artifact_uri or str((self.data_dir / "artifacts").resolve())

    def masked(self) -> dict[str, object]:
        """Effective values for display, every secret masked (tokens, passwords, credentials inside URLs)."""
        values = self.model_dump()
        values["database_url"] = self.effective_database_url
        values["artifact_uri"] = self.effective_artifact_uri
        for name in secret_fields():
            value = values[name]
            if isinstance(value, SecretStr):
                values[name] = "********" if value.get_secret_value() else None
            elif isinstance(value, str):
                values[name] = mask_url(value)
        return values

    # --- security: secret files and connection checks ----------------------------------------------
    URL_SECRETS: ClassVar[tuple[str, ...]] = ("database_url", "redis_url")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _check_connections(self) -> Settings:
        """Kafka credentials that fit the protocol; Redis TLS files folded into a ``rediss://`` URL's query."""
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL") and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_sasl_username and kafka_sasl_password: required with {protocol}")
        tls_files = self.kafka_ssl_cafile or self.kafka_ssl_certfile or self.kafka_ssl_keyfile
        if not protocol.endswith("SSL") and tls_files:
            raise ValueError(f"kafka_ssl_*: only used with SSL or SASL_SSL, not {protocol}")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile: give both or neither")
        self.redis_url = _redis_tls_url(self.redis_url, self.redis_ssl_cafile, self.redis_ssl_certfile,
                                        self.redis_ssl_keyfile)
        return self


def secret_fields() -> tuple[str, ...]:
    """Names of the settings that hold secrets: every ``SecretStr`` field plus the URLs that may carry passwords."""
    def is_secret(annotation: object) -> bool:
        return annotation is SecretStr or SecretStr in typing.get_args(annotation)

    return tuple(n for n, f in Settings.model_fields.items() if is_secret(f.annotation)) + Settings.URL_SECRETS


class SecretFilesSource(PydanticBaseSettingsSource):
    """``STABLESEG_<NAME>_FILE=/path`` for every secret setting: the value is that file's content (a trailing
    newline stripped), the usual way of passing mounted Kubernetes/Docker secrets."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # values come from __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in secret_fields():
            env = f"STABLESEG_{name.upper()}"
            path = os.environ.get(f"{env}_FILE")
            if not path:
                continue
            if os.environ.get(env):
                raise ValueError(f"{env} and {env}_FILE are both set: give one of them")
            try:
                values[name] = Path(path).read_text().rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{env}_FILE: cannot read {path}: {exc.strerror}") from None
        return values


SEED_PROFILE: dict[str, object] = {
    "epochs": 30, "batch_size": 300, "patience": 5, "min_cluster_size": 50, "min_samples": 50,
    "selection_density_factors": [1.0], "partial_years": "count", "autoencoder_members": 1,
}
"""The case study's exact settings (``STABLESEG_PROFILE=seed``, ``--profile seed``): 30 epochs at batch 300,
patience 5, ``HDBSCAN(min_cluster_size=50)`` (min_samples defaults to it), one autoencoder, one density candidate,
latent served, every active year counted whole by the eligibility rule."""


def profile_overrides(settings: Any, cls: type, prefix: str = "") -> dict[str, object]:
    """The entries of the settings' profile (``seed``: :data:`SEED_PROFILE`; ``auto``: none) that are fields of
    the parameter class ``cls`` (field ``name`` is the setting ``<prefix><name>``)."""
    if getattr(settings, "profile", None) != "seed":
        return {}
    names = cls.model_fields if hasattr(cls, "model_fields") else {f.name for f in dataclasses.fields(cls)}
    return {name: SEED_PROFILE[prefix + name] for name in names if prefix + name in SEED_PROFILE}


def settings_default(name: str) -> object:
    """The default of one Settings field: parameter classes take their defaults from here (one home)."""
    field = Settings.model_fields[name]
    return field.default_factory() if field.default_factory is not None else field.default


def params_from_settings(cls: type[T], settings: Any, prefix: str = "", **overrides: Any) -> T:
    """THE mapping from Settings to a parameter class: field ``name`` of ``cls`` (a dataclass or pydantic model)
    takes ``settings.<prefix><name>`` when Settings has it, then ``overrides`` win."""
    names = cls.model_fields if hasattr(cls, "model_fields") else {f.name for f in dataclasses.fields(cls)}
    values = {name: getattr(settings, prefix + name) for name in names if hasattr(settings, prefix + name)}
    return cls(**{**values, **overrides})


class SettingsParams:
    """Base of a frozen parameter dataclass backed by ``Settings.<prefix><field>``: ``class P(SettingsParams,
    prefix="gate_")`` with bare annotated fields; each field's default is that Settings default (one home) and
    ``P.from_settings(settings)`` reads the configured values."""

    settings_prefix: ClassVar[str] = ""

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.settings_prefix = prefix
        for name in inspect.get_annotations(cls):
            if name not in cls.__dict__:  # runs before @dataclass, which takes these as the defaults
                setattr(cls, name, settings_default(prefix + name))

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> Self:
        """``Settings.<prefix><field>`` for every field Settings has, then the settings' profile
        (:func:`profile_overrides`), then ``overrides``."""
        profile = profile_overrides(settings, cls, cls.settings_prefix)
        return params_from_settings(cls, settings, cls.settings_prefix, **{**profile, **overrides})


def _redis_tls_url(url: str, cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> str:
    """``url`` with redis-py's ``ssl_ca_certs`` / ``ssl_certfile`` / ``ssl_keyfile`` query options added (every
    Redis client is built with ``from_url``, so the URL carries the TLS files to all of them)."""
    files = {"ssl_ca_certs": cafile, "ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if not any(files.values()):
        return url
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        raise ValueError(f"redis_ssl_*: need a TLS redis_url (rediss://...), not {parts.scheme}://")
    query = dict(parse_qsl(parts.query))
    query.update({k: str(v) for k, v in files.items() if v and k not in query})
    return urlunsplit(parts._replace(query=urlencode(query)))


def secret_values(settings: Settings) -> list[str]:
    """The secret strings in ``settings`` (tokens, passwords, passwords inside URLs), e.g. to redact logs."""
    values = []
    for name in secret_fields():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
        elif isinstance(value, str) and (password := urlsplit(value).password):
            values.append(password)
    return [v for v in values if v]


def mask_url(url: str) -> str:
    """Hide a password inside a URL (``scheme://user:secret@host`` -> ``scheme://user:***@host``)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
