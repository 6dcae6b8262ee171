"""Waiting for the system to settle: the feature store, the trainer, the assigner. Every wait has a deadline and
fails fast when a service process died."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import redis
from kafka.errors import KafkaError
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from services.assigner.store import AssignmentStore
from services.demo.bus import end_offsets, group_lag, read_topic
from services.demo.observe import LABELLED, ApiError, AssignerClient, trainer_outcome
from services.demo.options import DemoError
from shared.bus.topics import FEATURES_UPDATED, MODELS_PUBLISHED, SALES_MONTHLY
from shared.config import Settings
from shared.feature_store import FeatureStore
from shared.redis_client import settings_client
from shared.stack.services import service_processes

Check = Callable[[], tuple[bool, str]]
TRANSIENT = (KafkaError, redis.RedisError, httpx.HTTPError, OSError)
ASSIGNER_GROUP = "stableseg-assigner"


class _NotYet(Exception):
    pass


def dead_service(settings: Settings) -> str | None:
    """The first of the four services whose process is gone, if any."""
    return next((s.name for s in service_processes(settings) if not s.is_running()), None)


def poll_until(check: Check, what: str, timeout: float, settings: Settings, service: str | None = None,
               on_detail: Callable[[str], None] | None = None, interval: float = 0.5) -> str:
    """Call ``check`` until it reports done (returns its detail). API errors and transient broker, Redis or
    network errors count as "not yet"; any other error ends the wait at once, so does a dead service. On timeout:
    DemoError naming ``service``."""

    def attempt() -> str:
        dead = dead_service(settings)
        if dead is not None:
            raise DemoError(f"{what}: the {dead} service exited", dead)
        try:
            done, detail = check()
        except ApiError as exc:
            done, detail = False, str(exc)
        except DemoError:
            raise
        except TRANSIENT as exc:  # a broker or Redis hiccup: report it, try again
            done, detail = False, repr(exc)
        if on_detail is not None:
            on_detail(detail)
        if not done:
            raise _NotYet(detail)
        return detail

    retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(interval),
                        retry=retry_if_exception_type(_NotYet))
    try:
        return retrying(attempt)
    except RetryError as exc:
        detail = exc.last_attempt.exception()
        raise DemoError(f"{what}: not done after {timeout:.0f} s ({detail})", service) from None


class FeaturesProbe:
    """How far the features service is behind ``sales.monthly``: records not applied yet (offsets it keeps in
    Redis against the topic's end offsets), retailers still to recompute, month closes not yet published."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.client = settings_client(settings, socket_timeout=10)
        self.store = FeatureStore(client=self.client, cluster=settings.redis_cluster,
                                  groups=settings.feature_store_slot_groups)

    def close(self) -> None:
        self.client.close()

    def __call__(self) -> tuple[bool, str]:
        stored = self.store.offsets()
        records = 0
        for partition, end in end_offsets(self.bootstrap, SALES_MONTHLY).items():
            applied = stored.get(f"{SALES_MONTHLY}:{partition}", (-1, ""))[0]
            records += max(0, end - 1 - applied)
        dirty, outbox = self.store.dirty_count(), self.store.outbox_length()
        detail = f"{records:,} records to apply, {dirty:,} retailers to recompute, {outbox} month closes to publish"
        return records + dirty + outbox == 0, detail

    def eligible(self, feature_set: str) -> list[str]:
        """Ids of the retailers the store holds as eligible, sorted."""
        frame = self.store.snapshot(feature_set, eligible_only=True)
        return [str(shop) for shop in frame.index]


class TrainingWatch:
    """Created BEFORE a training is requested; ``check`` is done once a newer ``models.published`` arrives and
    fails (DemoError) when the trainer reports the new training rejected or failed."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap, self.port = settings.kafka_bootstrap, settings.trainer_port
        self.baseline = max(self._versions(), default=0)
        self.outcome_before = trainer_outcome(self.port)
        self.event: dict[str, Any] | None = None

    def _versions(self) -> list[int]:
        return [e.data["version"] for e in read_topic(self.bootstrap, MODELS_PUBLISHED)
                if isinstance(e.data.get("version"), int)]

    def __call__(self) -> tuple[bool, str]:
        for event in read_topic(self.bootstrap, MODELS_PUBLISHED):
            if isinstance(event.data.get("version"), int) and event.data["version"] > self.baseline:
                self.event = event.data
                return True, f"version {event.data['version']} published"
        outcome = trainer_outcome(self.port)
        if outcome and outcome != self.outcome_before and outcome["status"] in ("rejected", "failed"):
            raise DemoError(f"the training was {outcome['status']}: {outcome.get('reason')}", "trainer")
        return False, "training" if outcome == self.outcome_before else f"trainer: {outcome}"


class AssignerProbe:
    """Done when the assigner serves ``version`` and has committed every event it consumes."""

    def __init__(self, settings: Settings, client: AssignerClient, version: int) -> None:
        self.bootstrap, self.client, self.version = settings.kafka_bootstrap, client, version

    def __call__(self) -> tuple[bool, str]:
        serving = self.client.serving_version()
        if serving != self.version:
            return False, f"serving version {serving}, waiting for {self.version}"
        lag = group_lag(self.bootstrap, ASSIGNER_GROUP, (MODELS_PUBLISHED, FEATURES_UPDATED))
        return lag == 0, f"{lag:,} events to consume"


class LabelWatch:
    """Done when every given retailer is assigned or noise: all of them read in bulk from the assignment store the
    API serves from (``services.assigner.store``), and a sample of them through ``GET /v1/retailers/{id}/segment``,
    which must agree. ``answers`` has the API's shape (shop_id -> segment_id, segment_name, status, ...)."""

    def __init__(self, client: AssignerClient, redis_url: str, shop_ids: list[str], sample: int = 100) -> None:
        self.client = client
        self.store = AssignmentStore(redis_url)
        self.shops = list(shop_ids)
        self.sample = self.shops[:: max(1, len(self.shops) // sample)] if sample else []
        self.answers: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self.store.close()

    def __call__(self) -> tuple[bool, str]:
        states = self.store.states(self.shops)
        self.answers = {
            str(shop): {"shop_id": str(shop), "segment_id": row["segment"], "segment_name": row["name"],
                        "status": row["status"], "strength": row["strength"], "model_version": row["model_version"]}
            for shop, row in states.iterrows()
        }
        missing = [shop for shop in self.shops if self.answers.get(shop, {}).get("status") not in LABELLED]
        if missing:
            return False, f"{len(missing):,} eligible retailers not labelled yet (e.g. {missing[0]})"
        api = self.client.retailers(self.sample)
        differ = [shop for shop, answer in api.items() if _place(answer) != _place(self.answers[shop])]
        return not differ, f"{len(differ)} of {len(api)} API answers differ from the store (e.g. {differ[:1]})"


def _place(answer: dict[str, Any]) -> tuple[Any, Any]:
    return answer.get("status"), answer.get("segment_id")
