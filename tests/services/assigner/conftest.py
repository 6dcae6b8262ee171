"""The assigner tests' world (``tests.helpers.make_world``): settings on the test's own broker, topics, a migrated
registry, the artifact store and a ``Bus``. A module guards the admin routes by overriding ``admin_token``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from tests.helpers import make_world


@pytest.fixture
def admin_token() -> str | None:
    return None


@pytest.fixture
def world(tmp_path: Path, settings: Settings, fresh_kafka_bootstrap: str, admin_token: str | None
          ) -> Iterator[dict[str, Any]]:
    yield from make_world(tmp_path, settings, fresh_kafka_bootstrap, admin_token=admin_token)
