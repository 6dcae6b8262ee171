"""Start/stop helpers of the services: ``shared.http.component_lifespan`` and ``shared.tasks.cancel_all``."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.http import component_lifespan
from shared.tasks import cancel_all


class Recorder:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")


def test_component_lifespan_builds_starts_serves_then_stops_and_cleans_up_in_order() -> None:
    events: list[str] = []

    async def close_async() -> None:
        events.append("async cleanup")

    def build(app: FastAPI) -> Recorder:
        events.append(f"build {app.title}")
        return Recorder(events)

    app = FastAPI(title="x", lifespan=component_lifespan(build, close_async, lambda: events.append("sync cleanup")))

    @app.get("/")
    def root() -> dict[str, int]:
        events.append("request")
        return {"ok": 1}

    with TestClient(app) as client:
        assert client.get("/").json() == {"ok": 1}
    assert events == ["build x", "start", "request", "stop", "async cleanup", "sync cleanup"]


def test_cancel_all_ends_running_finished_and_failed_tasks_without_raising() -> None:
    async def scenario() -> list[bool]:
        async def forever() -> None:
            await asyncio.Event().wait()

        async def fails() -> None:
            raise RuntimeError("boom")

        tasks = [asyncio.create_task(forever()), asyncio.create_task(fails()), asyncio.create_task(asyncio.sleep(0))]
        await asyncio.sleep(0.01)
        await cancel_all(tasks)
        return [task.done() for task in tasks]

    assert asyncio.run(scenario()) == [True, True, True]
