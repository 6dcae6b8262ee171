"""One settings object for every component: environment variables prefixed ``STABLESEG_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    feature_set: str = "behaviour-v3"
    feature_store_sets: list[str] = Field(
        default_factory=list,
        description="feature sets the features service keeps for every retailer, a JSON list; empty: every "
        "registered set. Must include feature_set; after a change run `stableseg features rebuild`",
    )
    min_tenure_years: float = 1.0
    min_avg_active_months_per_year: float = 6.0
    features_batch_records: int = Field(5000, ge=1, description="max records the features service applies per batch")
    features_engine: Literal["aiokafka", "faust"] = Field(
        "aiokafka", description="features consumer: aiokafka group consumer, or a faust-streaming app (same processor)"
    )

    # --- model -----------------------------------------------------------------------------------
    seed: int = 42
    latent_dim: int = 5
    epochs: int = 30
    batch_size: int = 300
    validation_split: float = 0.35
    patience: int = 5
    min_cluster_size: int = 50
    min_samples: int | None = None
    raw_baseline_max_rows: int | None = Field(20_000, ge=100, description="rows the raw-feature baseline is fitted on")

    # --- trainer ---------------------------------------------------------------------------------
    retrain_on_month_close: bool = True
    retrain_debounce_seconds: float = 10.0
    gate_min_clusters: int = 2
    gate_max_noise_ratio: float = 0.5
    gate_max_largest_share: float = 0.9
    trainer_lock_ttl_seconds: float = Field(
        30.0, gt=0, description="training lease across replicas; renewed every ttl/3, lapses after a crash"
    )

    # --- assigner --------------------------------------------------------------------------------
    match_min_jaccard: float = 0.5
    match_stable_jaccard: float = 0.75
    split_min_share: float = 0.25
    match_weak_strength: float = Field(0.1, ge=0.0, le=1.0, description="hysteresis: weaker switches are held")
    match_noise_grace: bool = Field(True, description="hysteresis: one noisy retrain keeps a stable retailer")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'stableseg.db').resolve()}"

    @property
    def effective_artifact_uri(self) -> str:
        return self.artifact_uri or str((self.data_dir / "artifacts").resolve())

    def masked(self) -> dict[str, object]:
        """Effective values for display, secrets masked."""
        values = self.model_dump()
        values["database_url"] = _mask_url(self.effective_database_url)
        values["artifact_uri"] = self.effective_artifact_uri
        values["admin_token"] = "********" if self.admin_token else None
        return values


def _mask_url(url: str) -> str:
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
