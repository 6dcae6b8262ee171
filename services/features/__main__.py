"""``python -m services.features``: the features service without the full CLI (fast start for tests and images)."""

from services.features.main import run
from shared.config import get_settings, secret_values
from shared.logging import configure_logging

settings = get_settings()
configure_logging(settings.log_format, settings.log_level, secret_values(settings))
run(settings)
