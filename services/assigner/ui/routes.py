"""The explorer's routes under ``/ui``: read-only pages, a JSON feed for the live changes, static files.

Every page is drawn from the assigner's own stores in a worker thread (SQL and Redis reads); an unknown retailer,
segment or version is a 404 page, a page that needs a model before the first one is applied a 503 page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from services.assigner.routes.deps import NO_MODEL, NOT_READY
from services.assigner.ui import render
from services.assigner.ui.views import lineage, models, retailers, segments
from services.assigner.ui.views.common import PageNotFound, PageUnavailable, Sources
from shared.config import Settings

CACHE_FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}


def sources(request: Request) -> Sources:
    """The stores of the app's assigner service (created once, when its registry is open)."""
    found = getattr(request.app.state, "ui_sources", None)
    if found is None:
        service = request.app.state.assigner
        if service.registry is None:
            raise PageUnavailable(NOT_READY)
        found = request.app.state.ui_sources = Sources(service.registry, service.store, service.features)
    return found


async def serving_of(request: Request, required: bool = True) -> dict[str, Any] | None:
    serving = await request.app.state.reader.serving()
    if serving is None and required:
        raise PageUnavailable(NO_MODEL)
    return serving


async def draw(request: Request, template: str, build: Callable[..., dict[str, Any]], *args: Any,
               page: str = "", needs_model: bool = False) -> Response:
    """Build the context in a worker thread and render it; the two page errors become 404 / 503 pages."""
    query = request.query_params.get("q", "")
    try:
        if needs_model:
            args = (*args, await serving_of(request))
        context = await asyncio.to_thread(build, sources(request), *args)
    except PageNotFound as exc:
        return render.message("Not found", str(exc), 404, query)
    except PageUnavailable as exc:
        return render.message("Not available yet", str(exc), 503, query)
    return render.page(template, {**context, "page": page}, query=query)


def ui_router(settings: Settings) -> APIRouter:
    """The ``/ui`` pages; the promote form on the models page is there only when an admin token is configured."""
    router = APIRouter(prefix="/ui", include_in_schema=False)
    _add_pages(router, admin_enabled=bool(settings.admin_token and settings.admin_token.get_secret_value()))
    _add_feed_search_and_files(router)  # last: it ends with the catch-all
    return router


def _add_pages(router: APIRouter, admin_enabled: bool) -> None:
    """The HTML pages drawn from the stores."""

    @router.get("")
    async def overview(request: Request) -> Response:
        return await draw(request, "overview.html", segments.overview, page="overview", needs_model=True)

    @router.get("/segments/{segment_id}")
    async def segment(request: Request, segment_id: str) -> Response:
        return await draw(request, "segment.html", segments.segment, segment_id, page="overview")

    @router.get("/retailers/{shop_id}")
    async def retailer(request: Request, shop_id: str) -> Response:
        return await draw(request, "retailer.html", retailers.retailer, shop_id, needs_model=True)

    @router.get("/lineage")
    async def lineage_page(request: Request, version: str = "") -> Response:
        if version and not (version.isdigit() and int(version) >= 1):
            return render.message("Not found", f"version: expected a model version number, got {version!r}", 404)
        picked = int(version) if version else None
        return await draw(request, "lineage.html", lineage.lineage_page, picked, page="lineage")

    @router.get("/models")
    async def models_page(request: Request) -> Response:
        serving = await serving_of(request, required=False)
        return await draw(request, "models.html", models.models, serving, admin_enabled, page="models")

    @router.get("/changes")
    async def changes(request: Request, segment: str = "", reason: str = "") -> Response:
        return await draw(request, "changes.html", models.changes, segment, reason, page="changes")


def _add_feed_search_and_files(router: APIRouter) -> None:
    """The live changes feed (JSON), search, static files and the catch-all 404."""

    @router.get("/changes.json")
    async def changes_feed(request: Request, segment: str = "", reason: str = "", after: int = Query(0, ge=0)
                           ) -> JSONResponse:
        try:
            body = await asyncio.to_thread(models.changes, sources(request), segment, reason, after)
        except PageUnavailable as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        return JSONResponse({k: body[k] for k in ("changes", "last_id")})

    @router.get("/search")
    async def search(request: Request, q: str = "") -> Response:
        try:
            found = await asyncio.to_thread(retailers.search, sources(request), q)
        except PageUnavailable as exc:
            return render.message("Not available yet", str(exc), 503, q)
        if isinstance(found, str):
            return RedirectResponse(found, status_code=303)
        if not found["segments"] and not found["shops"]:
            return render.message("Nothing found", f"no retailer or segment matches {q.strip()!r}", 404, q)
        return render.page("search.html", {**found, "page": ""}, query=q)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        path = render.STATIC_FILES.get(name)
        if path is None:
            return render.message("Not found", f"no static file {name!r}", 404)
        return FileResponse(path, headers=CACHE_FOREVER)

    @router.get("/{rest:path}")
    async def unknown(rest: str) -> Response:
        if not rest:
            return RedirectResponse("/ui", status_code=307)
        return render.message("Not found", f"there is no page /ui/{rest}", 404)
