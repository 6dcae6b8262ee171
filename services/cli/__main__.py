"""``python -m services.cli`` = ``stableseg`` (used to start services as child processes)."""

from services.cli.main import app

app(prog_name="stableseg")
