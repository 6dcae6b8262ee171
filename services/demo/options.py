"""What a demo run is asked to do, validated up front (errors name the option), and the environment it runs in."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.config import Settings
from shared.data.generator import DEFAULT_END_YEAR

MARKER = ".stableseg-demo"  # a data dir holding this file was made by the demo and may be wiped by the next run


class DemoError(RuntimeError):
    """A demo step failed or timed out; ``service`` names the service whose log explains it (if any)."""

    def __init__(self, message: str, service: str | None = None) -> None:
        super().__init__(message)
        self.service = service


@dataclass(frozen=True)
class DemoOptions:
    """The knobs of ``stableseg demo`` (defaults: the size that finishes in under 5 minutes on 2 cores)."""

    retailers: int = 2000
    years: int = 3
    seed: int = 42
    drift_fraction: float = 0.05
    drift_month: str | None = None  # default: July of the last year (six months of drift before the end)
    end_year: int = DEFAULT_END_YEAR
    data_dir: Path | None = None  # default: <STABLESEG_DATA_DIR>/demo
    keep_running: bool = False
    step_timeout: float = 240.0
    batch_records: int = 5000

    def validate(self) -> DemoOptions:
        """Raise ValueError naming the first bad option; return self."""
        if self.retailers < 50:
            raise ValueError(f"retailers: must be at least 50 (clustering needs a population), got {self.retailers}")
        if self.years < 2:
            raise ValueError(f"years: must be at least 2 (a year of history before the drift month), got {self.years}")
        if not 0.0 < self.drift_fraction <= 1.0:
            raise ValueError(f"drift_fraction: must be above 0 and at most 1, got {self.drift_fraction}")
        if self.step_timeout <= 0:
            raise ValueError(f"step_timeout: must be positive, got {self.step_timeout}")
        if self.batch_records < 1:
            raise ValueError(f"batch_records: must be positive, got {self.batch_records}")
        month = self.effective_drift_month
        match = re.fullmatch(r"(\d{4})-(\d{2})", month)
        first_allowed = f"{self.end_year - self.years + 2:04d}-01"
        last_allowed = f"{self.end_year:04d}-12"
        if not match or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"drift_month: must be YYYY-MM, got {month!r}")
        if not first_allowed <= month <= last_allowed:
            raise ValueError(f"drift_month: must lie between {first_allowed} and {last_allowed}, got {month}")
        return self

    @property
    def effective_drift_month(self) -> str:
        return self.drift_month or f"{self.end_year:04d}-07"

    def resolved_data_dir(self, settings: Settings) -> Path:
        return Path(self.data_dir or Path(settings.data_dir) / "demo").resolve()


def demo_environment(base: Settings, options: DemoOptions) -> dict[str, str]:
    """``STABLESEG_*`` overrides for the demo and its children: everything under the demo's data dir on the
    embedded stack (configured ports kept), the demo's seed for the trainings too, no automatic retrain on
    month close (the demo requests both trainings); model settings stay the defaults (derived from the data)."""
    data_dir = options.resolved_data_dir(base)
    return {
        "STABLESEG_DATA_DIR": str(data_dir),
        "STABLESEG_DATABASE_URL": f"sqlite:///{data_dir / 'stableseg.db'}",
        "STABLESEG_ARTIFACT_URI": str(data_dir / "artifacts"),
        "STABLESEG_KAFKA_BOOTSTRAP": f"127.0.0.1:{base.broker_port}",
        "STABLESEG_REDIS_URL": f"redis://127.0.0.1:{base.redis_port}/0",
        "STABLESEG_RETRAIN_ON_MONTH_CLOSE": "false",
        "STABLESEG_SEED": str(options.seed),
    }


def demo_settings(options: DemoOptions) -> Settings:
    """The settings the demo (and its children) run with, read from the environment plus the demo's overrides."""
    base = Settings()
    with patched_environ(demo_environment(base, options)):
        return Settings()


@contextmanager
def patched_environ(overrides: dict[str, str]) -> Iterator[None]:
    """Apply ``overrides`` to ``os.environ`` (children inherit them); restore the whole environment afterwards
    (``start_all`` adds variables of its own)."""
    saved = dict(os.environ)
    os.environ.update(overrides)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
