"""``shared.config.SettingsParams``: parameter dataclasses whose defaults are the Settings defaults."""

from __future__ import annotations

import dataclasses

import pytest

from services.features.engine import ConsumerTimings
from services.features.month_gate import MonthClosePolicy
from shared.bus.link import GroupTimeouts
from shared.config import Settings, SettingsParams, settings_default
from shared.features.eligibility import EligibilityRule
from shared.model.gates import Gates
from shared.segments.matching import MatchParams

CLASSES = [Gates, MatchParams, EligibilityRule, MonthClosePolicy, GroupTimeouts, ConsumerTimings]


@pytest.mark.parametrize("cls", CLASSES)
def test_defaults_are_the_settings_defaults(cls: type[SettingsParams]) -> None:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    assert fields, "a dataclass with fields"
    for field in fields:
        assert field.default == settings_default(cls.settings_prefix + field.name), field.name
    assert cls() == cls.from_settings(Settings())


def test_from_settings_reads_the_prefixed_settings_and_overrides_win() -> None:
    settings = Settings(gate_min_clusters=4, gate_max_noise_ratio=0.3, match_min_jaccard=0.6, min_tenure_years=2.0)
    assert Gates.from_settings(settings) == Gates(min_clusters=4, max_noise_ratio=0.3)
    assert Gates.from_settings(settings, min_clusters=5).min_clusters == 5
    assert MatchParams.from_settings(settings).min_jaccard == 0.6
    assert EligibilityRule.from_settings(settings).min_tenure_years == 2.0
    assert EligibilityRule.from_settings(Settings(profile="seed")).partial_years == "count"  # the seed profile's
    assert EligibilityRule.from_settings(Settings(profile="seed"), partial_years="prorate").partial_years == "prorate"


def test_frozen_and_still_validated() -> None:
    gates = Gates()
    with pytest.raises(dataclasses.FrozenInstanceError):
        gates.min_clusters = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="gate_min_clusters"):
        Gates(min_clusters=0)


def test_an_explicit_default_is_kept() -> None:
    @dataclasses.dataclass(frozen=True)
    class Params(SettingsParams, prefix="gate_"):
        min_clusters: int
        label: str = "mine"  # not a setting: its own default

    assert Params() == Params(min_clusters=settings_default("gate_min_clusters"), label="mine")  # type: ignore[arg-type]
