"""Jinja2 templates and vendored static files of the explorer.

Static files are served by name with a content hash in their URL (``static_url``), so browsers may cache them
for good; every one of them ships in the package (see ``static/README.md``): the browser needs no network.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in (".js", ".css", ".txt", ".md")}
PLOTLY = "plotly-4.1.2.min.js"
_HASHES = {name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for name, path in STATIC_FILES.items()}


def static_url(name: str) -> str:
    return f"/ui/static/{name}?v={_HASHES[name]}"


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if not isinstance(value, int | float) or not math.isfinite(value) else f"{value:.{digits}%}"


def _num(value: Any, digits: int = 0) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num, when=_when)
    env.globals.update(static_url=static_url, plotly=PLOTLY)
    return env


ENV = _environment()


def page(template: str, context: dict[str, Any], status: int = 200, query: str = "") -> HTMLResponse:
    """A rendered page; ``query`` refills the search box."""
    html = ENV.get_template(template).render(**context, query=query)
    return HTMLResponse(html, status_code=status)


def message(title: str, text: str, status: int, query: str = "") -> HTMLResponse:
    """A plain page for 404 / 503: what is missing and where to go instead (never a stack trace)."""
    return page("message.html", {"title": title, "text": text, "status": status, "page": ""}, status, query)
