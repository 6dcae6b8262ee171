"""The selection rule (pure logic): which scored candidate is served."""

from __future__ import annotations

from shared.model.schedule import Density
from shared.model.selection import LATENT, RAW, Candidate, choose

DENSITY = Density(min_cluster_size=50, min_samples=5)


def scored(space: str, factor: float, score: float, qualified: bool = True) -> Candidate:
    return Candidate(space=space, factor=factor, density=DENSITY, sample_density=DENSITY, clusters=6,
                     qualified=qualified, score=score)


def test_a_candidate_must_beat_the_derived_density_by_more_than_the_tolerance() -> None:
    tie = [scored(LATENT, 0.5, 0.894), scored(LATENT, 1.0, 0.890), scored(LATENT, 2.0, 0.892)]
    served, fitted, reason = choose(tie, tolerance=0.01)
    assert (served.space, served.factor, reason) == (LATENT, 1.0, None)
    assert fitted[LATENT] is served  # the space's clusterer is fitted with the served density
    served, best, _ = choose(tie, tolerance=0.0)
    assert served.factor == 0.5 and best[LATENT].factor == 0.5
    clear = [scored(LATENT, 0.5, 0.93), scored(LATENT, 1.0, 0.89)]
    assert choose(clear, tolerance=0.01)[0].factor == 0.5


def test_raw_is_served_only_when_it_beats_latent_beyond_the_tolerance() -> None:
    close = [scored(LATENT, 1.0, 0.80), scored(RAW, 1.0, 0.805)]
    assert choose(close, tolerance=0.01)[0].space == LATENT
    better = [scored(LATENT, 1.0, 0.80), scored(RAW, 2.0, 0.85)]
    assert choose(better, tolerance=0.01)[0].space == RAW
    unreproducible = [scored(LATENT, 1.0, 0.0, qualified=False), scored(RAW, 1.0, 0.4)]
    assert choose(unreproducible, tolerance=0.01)[0].space == RAW


def test_without_a_qualified_candidate_latent_factor_one_is_served_with_the_reason() -> None:
    none = [scored(LATENT, 0.5, 0.0, qualified=False), scored(LATENT, 1.0, 0.0, qualified=False)]
    served, _, reason = choose(none, tolerance=0.01)
    assert served.factor == 1.0 and reason == "no candidate has >= 2 clusters with seed agreement >= the minimum"
