"""Model selection by evidence the user has (no ground truth): score candidate clusterings, choose one to serve.

Candidates: every space (latent, and raw when the baseline is on) x every density (the derived
``min_cluster_size`` times each of ``selection_density_factors``). Each is fitted on a fixed, evenly spaced sample
of the retailers (``selection_sample_rows``; cluster sizes scaled to it) and scored by:

- ``stability``: Hennig's clusterboot by subsetting. ``selection_bootstrap_rounds`` resamples of
  ``selection_bootstrap_fraction`` of the sample (without replacement, seeded) are re-clustered; a cluster's
  stability is the mean over resamples of its best Jaccard with a resample cluster (< 0.5 dissolved, >= 0.75
  stable); ``stability`` is the size-weighted mean over clusters.
- ``seed_agreement`` (latent only): ARI between the same density fitted on two embeddings of the sample that share
  no autoencoder seed: the two halves of the ensemble (its first ``members // 2`` members' latent columns and the
  rest's; no extra training), or with one autoencoder, its embedding and a second autoencoder's trained with the
  next seed. Halves are less stable than the whole ensemble, so this reads conservatively (the raw space has no
  seed: ``None``).
- ``dbcv`` (HDBSCAN's relative validity), ``noise_ratio`` and ``clusters``, recorded with the rest.

Rule: a candidate qualifies with >= 2 clusters and, in the latent space, ``seed_agreement >=
selection_seed_agreement_min``. Its ``score`` is ``(1 - noise_ratio) x stability``: the share of retailers in
segments that survive resampling. Among the qualified candidates scoring within ``selection_score_tolerance`` of
the best, the latent space is served before the raw one, then the factor closest to 1 (the derived density):
another space or density must beat the default by more than the sample's scoring can resolve. Without a
qualified candidate the latent candidate at factor 1 is served and
``reason`` says why (the quality gates and the pipeline refuse it when it cannot be trusted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

from shared.clustering import NOISE, DensityClusterer
from shared.model.params import ModelParams
from shared.model.schedule import Density, density, scaled_density

LATENT, RAW = "latent", "raw"
STABLE, WEAK = 0.75, 0.5


def trust_level(trust: float | None) -> str | None:
    """Hennig's reading of a bootstrap Jaccard: "stable" >= 0.75, "weak" 0.5-0.75, "unstable" < 0.5."""
    if trust is None:
        return None
    return "stable" if trust >= STABLE else "weak" if trust >= WEAK else "unstable"


@dataclass
class Candidate:
    """One scored configuration; ``resamples`` (rows of the sample, labels) are kept for :func:`cluster_trust`."""

    space: str
    factor: float
    density: Density
    sample_density: Density
    clusters: int = 0
    noise_ratio: float = 1.0
    stability: float = 0.0
    dbcv: float | None = None
    seed_agreement: float | None = None
    qualified: bool = False
    score: float = 0.0
    labels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    resamples: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "space": self.space, "factor": self.factor, **self.density.as_dict(),
            "sample_min_cluster_size": self.sample_density.min_cluster_size, "clusters": self.clusters,
            "noise_ratio": round(self.noise_ratio, 6), "stability": round(self.stability, 6),
            "dbcv": None if self.dbcv is None else round(self.dbcv, 6),
            "seed_agreement": None if self.seed_agreement is None else round(self.seed_agreement, 6),
            "qualified": self.qualified, "score": round(self.score, 6),
        }


def best_jaccards(reference: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """For each cluster of ``reference``: its best Jaccard with a cluster of ``labels`` (same rows; -1 = noise)."""
    ref_ids = np.unique(reference[reference != NOISE])
    new_ids = np.unique(labels[labels != NOISE])
    if ref_ids.size == 0:
        return {}
    if new_ids.size == 0:
        return {int(c): 0.0 for c in ref_ids}
    both = (reference != NOISE) & (labels != NOISE)
    inter = np.zeros((ref_ids.size, new_ids.size))
    np.add.at(inter, (np.searchsorted(ref_ids, reference[both]), np.searchsorted(new_ids, labels[both])), 1)
    ref_sizes = np.array([(reference == c).sum() for c in ref_ids], dtype=float)
    new_sizes = np.array([(labels == c).sum() for c in new_ids], dtype=float)
    jaccard = inter / (ref_sizes[:, None] + new_sizes[None, :] - inter)
    return {int(c): float(j) for c, j in zip(ref_ids, jaccard.max(axis=1), strict=True)}


def cluster_trust(reference: np.ndarray, resamples: list[tuple[np.ndarray, np.ndarray]]) -> dict[int, float]:
    """Mean best Jaccard of each ``reference`` cluster (labels of the sample rows) over the resample fits."""
    found: dict[int, list[float]] = {}
    for rows, labels in resamples:
        for cluster, value in best_jaccards(reference[rows], labels).items():
            found.setdefault(cluster, []).append(value)
    return {cluster: float(np.mean(values)) for cluster, values in sorted(found.items())}


def _weighted(trust: dict[int, float], labels: np.ndarray) -> float:
    if not trust:
        return 0.0
    sizes = np.array([(labels == c).sum() for c in trust], dtype=float)
    return float(np.dot(sizes, list(trust.values())) / sizes.sum())


def _fit_labels(points: np.ndarray, dens: Density, params: ModelParams, scored: bool = False) -> DensityClusterer:
    """HDBSCAN at ``dens`` on ``points``; only a ``scored`` fit computes DBCV (resample and seed fits give labels:
    no minimum spanning tree, no prediction data, the same labels at about half the cost)."""
    return DensityClusterer(min_cluster_size=dens.min_cluster_size, min_samples=dens.min_samples,
                            cluster_selection_method=params.cluster_selection_method,
                            cluster_selection_epsilon=params.cluster_selection_epsilon,
                            gen_min_span_tree=scored, prediction_data=False).fit(points)


def _resample_rows(n: int, params: ModelParams) -> list[np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(7,)))
    size = max(2, round(n * params.selection_bootstrap_fraction))
    return [np.sort(rng.choice(n, size=size, replace=False)) for _ in range(params.selection_bootstrap_rounds)]


def score_candidate(candidate: Candidate, points: np.ndarray, seed_pair: tuple[np.ndarray, np.ndarray] | None,
                    params: ModelParams) -> Candidate:
    """Fit ``candidate`` on the sample ``points`` and fill in its scores (see the module docstring); ``seed_pair``:
    the two embeddings of the sample the seed agreement compares (``points`` itself may be one of them)."""
    fitted = _fit_labels(points, candidate.sample_density, params, scored=True)
    labels = fitted.labels_
    candidate.labels, candidate.clusters = labels, fitted.n_clusters_
    candidate.noise_ratio = float(np.mean(labels == NOISE)) if labels.size else 1.0
    candidate.dbcv = fitted.relative_validity_
    for rows in _resample_rows(len(points), params):
        candidate.resamples.append((rows, _fit_labels(points[rows], candidate.sample_density, params).labels_))
    candidate.stability = _weighted(cluster_trust(labels, candidate.resamples), labels)
    if seed_pair is not None:
        first, second = (labels if side is points else _fit_labels(side, candidate.sample_density, params).labels_
                         for side in seed_pair)
        candidate.seed_agreement = float(adjusted_rand_score(first, second))
    agrees = candidate.seed_agreement is None or candidate.seed_agreement >= params.selection_seed_agreement_min
    candidate.qualified = candidate.clusters >= 2 and agrees
    candidate.score = (1.0 - candidate.noise_ratio) * candidate.stability if candidate.qualified else 0.0
    return candidate


def candidates_for(spaces: list[str], n_full: int, n_sample: int, params: ModelParams) -> list[Candidate]:
    """The unscored candidates (space x density factor), in a fixed order."""
    out = []
    for space in spaces:
        for factor in params.selection_density_factors:
            full = density(n_full, params, factor)
            sample = scaled_density(full, n_full, n_sample, floor=params.min_samples_floor)
            out.append(Candidate(space=space, factor=float(factor), density=full, sample_density=sample))
    return out


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: score (to 4 decimals), then latent before raw, then the factor closest to 1."""
    return sorted(candidates, key=lambda c: (-round(c.score, 4), c.space != LATENT, abs(np.log(c.factor))))


def preferred(qualified: list[Candidate], tolerance: float) -> Candidate:
    """Among the qualified candidates scoring within ``tolerance`` of the best (a difference the scoring on a
    sample cannot tell from noise): latent before raw, then the factor closest to 1 (the derived density), then
    the higher score."""
    top = max(c.score for c in qualified)
    contenders = [c for c in qualified if c.score >= top - tolerance]
    return min(contenders, key=lambda c: (c.space != LATENT, abs(np.log(c.factor)), -c.score))


def choose(candidates: list[Candidate], tolerance: float = 0.0) -> tuple[Candidate, dict[str, Candidate], str | None]:
    """(served, the candidate to fit per space, reason when nothing qualified): the served one for its space (see
    :func:`preferred`), the best-ranked one for the other."""
    ranked = rank(candidates)
    best = {space: next(c for c in ranked if c.space == space) for space in dict.fromkeys(c.space for c in ranked)}
    qualified = [c for c in ranked if c.qualified]
    if qualified:
        served = preferred(qualified, tolerance)
        return served, {**best, served.space: served}, None
    fallback = min((c for c in candidates if c.space == LATENT), key=lambda c: abs(np.log(c.factor)))
    reason = "no candidate has >= 2 clusters" + (
        "" if all(c.clusters < 2 for c in candidates) else " with seed agreement >= the minimum"
    )
    return fallback, {**best, LATENT: fallback}, reason
