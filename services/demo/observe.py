"""Reading the system the way a user does: the assigner's query API and the trainer's status endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services.demo.options import DemoError

LABELLED = ("assigned", "noise")


class ApiError(DemoError):
    """An API answered with an error or not at all (a poll retries it; elsewhere it ends the demo)."""


def _get(url: str, service: str) -> Any:
    try:
        response = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as exc:
        raise ApiError(f"GET {url} failed: {exc!r}", service) from None
    if response.status_code != 200:
        raise ApiError(f"GET {url} answered {response.status_code}: {response.text[:300]}", service)
    return response.json()


class AssignerClient:
    """``GET /v1/models``, ``/v1/segments``, ``/v1/retailers/{id}/segment`` (many at once)."""

    def __init__(self, port: int, concurrency: int = 16) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.concurrency = concurrency

    def models(self) -> dict[str, Any]:
        return _get(f"{self.base}/v1/models", "assigner")

    def serving_version(self) -> int | None:
        return self.models().get("serving_version")

    def segments(self) -> dict[str, Any]:
        return _get(f"{self.base}/v1/segments", "assigner")

    def retailers(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        """shop_id -> the ``/v1/retailers/{id}/segment`` answer, fetched ``concurrency`` at a time."""
        return asyncio.run(self._retailers(shop_ids))

    async def _retailers(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        gate = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=30.0, limits=limits) as client:

            async def one(shop: str) -> tuple[str, dict[str, Any]]:
                async with gate:
                    response = await client.get(f"/v1/retailers/{shop}/segment")
                if response.status_code != 200:
                    raise ApiError(f"GET /v1/retailers/{shop}/segment answered {response.status_code}: "
                                    f"{response.text[:300]}", "assigner")
                return shop, response.json()

            try:
                answers = await asyncio.gather(*(one(shop) for shop in shop_ids))
            except httpx.HTTPError as exc:
                raise ApiError(f"the assigner API failed: {exc!r}", "assigner") from None
        return dict(answers)


def trainer_outcome(port: int) -> dict[str, Any] | None:
    """The trainer's last training outcome (``GET /v1/status``), None before the first one."""
    return _get(f"http://127.0.0.1:{port}/v1/status", "trainer").get("last_outcome")
