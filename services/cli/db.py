"""`stableseg db upgrade|current`: the SQL schema (alembic migrations shipped inside shared.storage)."""

from __future__ import annotations

import sqlalchemy as sa
import typer
from rich.console import Console

from shared.config import get_settings
from shared.storage.db import current_revision, head_revision, upgrade_database

app = typer.Typer(help="The SQL registry's schema: alembic migrations.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

URL_OPTION = typer.Option(None, "--url", help="SQLAlchemy URL (default: STABLESEG_DATABASE_URL or the SQLite file)")


def _url(url: str | None) -> str:
    return url or get_settings().effective_database_url


def _mask_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


@app.command("upgrade")
def upgrade(url: str | None = URL_OPTION, revision: str = typer.Option("head", help="target revision")) -> None:
    """Create or migrate the schema to the newest revision (safe to run from several replicas at once)."""
    target = _url(url)
    try:
        before = current_revision(target)
        with console.status(f"migrating {_mask_url(target)} ..."):
            after = upgrade_database(target, revision)
    except Exception as exc:
        err_console.print(f"[red]error:[/red] database upgrade failed for {_mask_url(target)}: {exc}")
        raise typer.Exit(code=1) from exc
    state = "already at" if before == after else f"{before or 'empty'} ->"
    console.print(f"database {_mask_url(target)}: {state} revision [bold]{after}[/bold]")


@app.command("current")
def current(url: str | None = URL_OPTION) -> None:
    """Print the schema revision of the database and the newest one this code ships."""
    target = _url(url)
    try:
        revision = current_revision(target)
    except Exception as exc:
        err_console.print(f"[red]error:[/red] cannot read {_mask_url(target)}: {exc}")
        raise typer.Exit(code=1) from exc
    head = head_revision()
    note = "up to date" if revision == head else "run `stableseg db upgrade`"
    console.print(f"database {_mask_url(target)}: revision {revision or 'none (empty)'}; code head {head} ({note})")
