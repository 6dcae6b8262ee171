"""THE model fit, shared by the batch pipeline and the trainer: scale, autoencode, cluster, measure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import RobustScaler

from shared.clustering import DensityClusterer
from shared.logging import get_logger
from shared.metrics import clustering_report
from shared.model.bundle import ModelBundle
from shared.model.numpy_encoder import Encoder, encoder_of
from shared.model.params import ModelParams
from shared.model.refusal import InsufficientDataError
from shared.model.schedule import Density, scaled_density
from shared.model.selection import LATENT, RAW, Candidate, candidates_for, choose, cluster_trust, score_candidate
from shared.progress import Progress, or_silent

log = get_logger(__name__)


def canonical_order(features: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by ``shop_id`` (the index); mixed id types sort by their string form."""
    try:
        return features.sort_index(kind="stable")
    except TypeError:
        return features.sort_index(kind="stable", key=lambda idx: idx.map(str))


def _validate(features: Any, params: ModelParams) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"features: expected a pandas DataFrame indexed by shop_id, got {type(features).__name__}")
    if features.shape[1] < 2:
        raise ValueError(f"features: needs at least 2 feature columns, got {features.shape[1]}")
    _check_enough_rows(features.shape[0], params)
    if features.index.has_duplicates:
        dup = features.index[features.index.duplicated()][:5].tolist()
        raise ValueError(f"features: duplicate shop_id values in the index, e.g. {dup}")
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ValueError(f"features: non-numeric column(s) {non_numeric}")
    values = features.to_numpy(dtype=np.float64)
    bad = [str(c) for c, ok in zip(features.columns, np.isfinite(values).all(axis=0), strict=True) if not ok]
    if bad:
        raise ValueError(f"features: NaN or infinite values in column(s) {bad}")
    return canonical_order(features)


def _check_enough_rows(n_rows: int, params: ModelParams) -> None:
    eligibility = "STABLESEG_MIN_TENURE_YEARS / STABLESEG_MIN_AVG_ACTIVE_MONTHS_PER_YEAR (the eligibility rule)"
    if n_rows < params.min_eligible_retailers:
        raise InsufficientDataError(
            f"only {n_rows} eligible retailer(s), fewer than min_eligible_retailers={params.min_eligible_retailers}",
            f"relax {eligibility} or lower STABLESEG_MIN_ELIGIBLE_RETAILERS",
        )
    if params.min_cluster_size is not None and n_rows < 2 * params.min_cluster_size:
        raise InsufficientDataError(
            f"{n_rows} eligible retailer(s) cannot hold two clusters of min_cluster_size={params.min_cluster_size}",
            f"lower STABLESEG_MIN_CLUSTER_SIZE (or unset it to derive it) or relax {eligibility}",
        )


def _truth_for(truth: pd.Series | None, index: pd.Index) -> np.ndarray | None:
    if truth is None:
        return None
    if not isinstance(truth, pd.Series):
        raise TypeError("truth: expected a pandas Series indexed by shop_id")
    missing = index.difference(truth.index)
    if len(missing):
        raise ValueError(f"truth: no label for {len(missing)} shop_id(s), e.g. {missing[:5].tolist()}")
    return truth.loc[index].to_numpy()


class _Stages:
    """Times named stages and reports each as ``progress(stage, 0, 1)`` ... ``progress(stage, 1, 1)``."""

    def __init__(self, progress: Progress | None) -> None:
        self.report = or_silent(progress)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        self.report(stage, 0, 1)
        yield
        self.seconds[stage] = round(time.perf_counter() - started, 3)
        self.report(stage, 1, 1)


@dataclass(frozen=True)
class _Rows:
    """Row positions (canonical order): the raw baseline's rows, the selection sample (a subset of them), and the
    rows the latent HDBSCAN is fitted on (``None``: all)."""

    raw: np.ndarray
    sample_in_raw: np.ndarray
    latent_fit: np.ndarray | None = None

    @property
    def sample(self) -> np.ndarray:
        return self.raw[self.sample_in_raw]

    @classmethod
    def for_rows(cls, n_rows: int, params: ModelParams) -> _Rows:
        raw = raw_baseline_rows(n_rows, params.raw_baseline_max_rows)
        latent_fit = bounded_rows(n_rows, params.cluster_fit_max_rows)
        return cls(raw, raw_baseline_rows(len(raw), params.selection_sample_rows), latent_fit)


def member_rows(train: np.ndarray, params: ModelParams) -> list[np.ndarray]:
    """Per ensemble member, the rows of ``train`` it trains on: all of them when there are at most
    ``autoencoder_member_rows``, else that many (or ``len(train) / members`` when more) evenly spaced, each member
    shifted by its share of the spacing (so members see different rows)."""
    count, n = params.autoencoder_members, len(train)
    size = max(-(-n // count), min(n, params.autoencoder_member_rows))
    if size >= n:
        return [train] * count
    return [train[np.floor((np.arange(size) + i / count) * (n / size)).astype(np.int64)] for i in range(count)]


def first_member_seed(seed: int, params: ModelParams) -> int:
    """The ensemble of model seed ``s`` is the autoencoders seeded ``s x members`` ... ``s x members + members - 1``:
    two model seeds share no member (one member: the seed itself)."""
    return seed * params.autoencoder_members


def _train_members(scaled: np.ndarray, rows: list[np.ndarray], params: ModelParams, report: Progress,
                   first_seed: int) -> list[Any]:
    """One autoencoder per member (seeds ``first_seed``, ``first_seed + 1``, ...), each on its rows; progress
    counts the epochs of all members."""
    members = []
    for i, member in enumerate(rows):
        def member_report(stage: str, done: int, total: int, i: int = i) -> None:
            report(stage, i * total + done, len(rows) * total)

        members.append(_train_autoencoder(scaled[member], params, member_report, seed=first_seed + i))
    return members


def _train_autoencoder(scaled: np.ndarray, params: ModelParams, report: Progress, seed: int | None = None) -> Any:
    from shared.model.autoencoder import Autoencoder  # TensorFlow loads only when training

    kwargs = params.autoencoder_kwargs(len(scaled))
    if seed is not None:
        kwargs["seed"] = seed
    log.info("autoencoder.fit", rows=len(scaled), features=scaled.shape[1], epochs=kwargs["epochs"],
             batch_size=kwargs["batch_size"], seed=kwargs["seed"])
    return Autoencoder(**kwargs).fit(scaled, progress=report)


Selected = tuple[Candidate, dict[str, Candidate], list[Candidate], str | None]


def _select(points: dict[str, np.ndarray], n_full: int, params: ModelParams,
            seed_pair: tuple[np.ndarray, np.ndarray]) -> Selected:
    """Score every candidate on the sample ``points`` (per space); (served, best per space, all, reason when none
    qualified)."""
    candidates = candidates_for(list(points), n_full, len(points[LATENT]), params)
    for candidate in candidates:
        pair = seed_pair if candidate.space == LATENT else None
        score_candidate(candidate, points[candidate.space], pair, params)
    served, best, reason = choose(candidates, params.selection_score_tolerance)
    if params.profile == "seed":  # the case study serves its latent space
        served = best[LATENT]
    return served, best, candidates, reason


def fit_density(points: np.ndarray, full: Density, params: ModelParams,
                sample: np.ndarray | None = None) -> DensityClusterer:
    """HDBSCAN with density ``full`` on ``points``; with ``sample`` (row positions), fitted on those rows at the
    same density scaled to the sample (as the selection scores it) and the other rows predicted."""
    density = full if sample is None else scaled_density(full, len(points), len(sample),
                                                         floor=params.min_samples_floor)
    return DensityClusterer(**density.as_dict(), cluster_selection_method=params.cluster_selection_method,
                            cluster_selection_epsilon=params.cluster_selection_epsilon).fit(points, sample=sample)


@dataclass(frozen=True)
class _Spaces:
    """The two spaces a clustering can live in: scaled raw features and the autoencoder's embedding."""

    scaler: RobustScaler
    scaled: np.ndarray
    autoencoder: Any
    encoder: Encoder
    latent: np.ndarray
    member_rows: int


@dataclass(frozen=True)
class _Choice:
    """The selection's outcome: the served candidate, the candidate fitted per space, every candidate, why."""

    served: Candidate
    fitted: dict[str, Candidate]
    candidates: list[Candidate]
    reason: str | None


def _fit_spaces(data: pd.DataFrame, params: ModelParams, stages: _Stages) -> _Spaces:
    """The scaler on every row; the ``autoencoder_members`` autoencoders on every row, or above
    ``autoencoder_max_rows`` on that many evenly spaced rows (canonical order), each member on its share of them
    (:func:`member_rows`); both spaces computed for every row. The kept autoencoder is the first member."""
    with stages("scaling"):
        scaler = RobustScaler().fit(data.to_numpy(dtype=np.float64))
        scaled = scaler.transform(data.to_numpy(dtype=np.float64))
    with stages("autoencoder"):
        train = bounded_rows(len(scaled), params.autoencoder_max_rows)
        rows = member_rows(np.arange(len(scaled)) if train is None else train, params)
        members = _train_members(scaled, rows, params, stages.report, first_member_seed(params.seed, params))
        encoder = encoder_of([ae.to_numpy_encoder() for ae in members])
    return _Spaces(scaler, scaled, members[0], encoder, encoder.transform(scaled), len(rows[0]))


def _seed_pair(latent_sample: np.ndarray, spaces: _Spaces, rows: _Rows,
               params: ModelParams) -> tuple[np.ndarray, np.ndarray]:
    """Two embeddings of the sample rows that share no autoencoder seed (see :mod:`shared.model.selection`): the
    ensemble's two halves (latent columns are member-major), or with one member ``latent_sample`` itself and an
    autoencoder of the next seed trained on the sample."""
    members = params.autoencoder_members
    if members >= 2:
        split = (members // 2) * params.latent_dim
        return latent_sample[:, :split], latent_sample[:, split:]
    sample = spaces.scaled[rows.sample]
    second = _train_autoencoder(sample, params, or_silent(None), seed=first_member_seed(params.seed + 1, params))
    return latent_sample, second.to_numpy_encoder().transform(sample)


def _choose(spaces: _Spaces, rows: _Rows, params: ModelParams, stages: _Stages) -> _Choice:
    """Model selection on the sample rows, seed agreement from :func:`_seed_pair`."""
    with stages("selection"):
        points = {LATENT: spaces.latent[rows.sample]}
        if params.raw_baseline:
            points[RAW] = spaces.scaled[rows.sample]
        seed_pair = _seed_pair(points[LATENT], spaces, rows, params)
        return _Choice(*_select(points, len(spaces.scaled), params, seed_pair))


def _fit_clusterers(spaces: _Spaces, choice: _Choice, rows: _Rows, params: ModelParams,
                    stages: _Stages) -> tuple[DensityClusterer, DensityClusterer | None]:
    """Each space's clusterer on all its rows, with the density chosen for it."""
    with stages("latent_clustering"):
        latent = fit_density(spaces.latent, choice.fitted[LATENT].density, params, rows.latent_fit)
    if not params.raw_baseline:
        return latent, None
    with stages("raw_clustering"):
        return latent, fit_density(spaces.scaled[rows.raw], choice.fitted[RAW].density, params)


def _stage_seconds(stages: _Stages) -> dict[str, float]:
    seconds = {**stages.seconds, "clustering": stages.seconds["latent_clustering"] + stages.seconds.get(
        "raw_clustering", 0.0)}
    seconds["total"] = round(sum(stages.seconds.values()), 3)
    return seconds


def fit_bundle(
    features: pd.DataFrame,
    feature_set: str,
    params: ModelParams | None = None,
    progress: Progress | None = None,
    truth: pd.Series | None = None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Fit scaler, autoencoder, choose the served clustering by evidence, fit it on ``features``, measure.

    ``features`` is indexed by shop_id with one numeric column per feature; rows are sorted by shop_id first,
    so the result does not depend on input order. ``truth`` (archetype per shop_id) adds ARI/AMI. ``progress``
    stages: scaling, autoencoder (also per epoch), selection, latent_clustering, raw_clustering, metrics.
    Returns the bundle and ``{"n", "latent_fit_rows", "latent", "raw", "served", "selection", "trust",
    "autoencoder", "seconds"}``.
    """
    params = params or ModelParams()
    stages = _Stages(progress)
    data = _validate(features, params)
    params = params.with_ensemble_for(len(data))  # the derived ensemble size, recorded with the bundle
    truth_values = _truth_for(truth, data.index)
    rows = _Rows.for_rows(len(data), params)
    spaces = _fit_spaces(data, params, stages)
    choice = _choose(spaces, rows, params, stages)
    latent_clusterer, raw_clusterer = _fit_clusterers(spaces, choice, rows, params, stages)
    served = choice.served
    with stages("metrics"):
        reports = {LATENT: clustering_report(latent_clusterer.labels_, spaces.latent, truth_values,
                                             dbcv=latent_clusterer.relative_validity_),
                   RAW: None if raw_clusterer is None else _raw_report(raw_clusterer, spaces.scaled, truth_values,
                                                                       rows.raw)}
        trust = cluster_trust(_labels_at_sample(served.space, latent_clusterer, raw_clusterer, rows), served.resamples)
    ae = spaces.autoencoder
    metrics: dict[str, Any] = {
        "n": len(data), "latent_fit_rows": latent_clusterer.fit_rows_, **reports,
        "served": {"space": served.space, **served.density.as_dict(), **reports[served.space]},
        "selection": {"candidates": [c.as_dict() for c in choice.candidates], "served": served.as_dict(),
                      "reason": choice.reason},
        "trust": {str(k): round(v, 6) for k, v in trust.items()},
        "autoencoder": {**_history_summary(ae.history_), "batch_size": ae.batch_size, "epochs": ae.epochs,
                        "members": params.autoencoder_members, "member_rows": spaces.member_rows},
        "seconds": _stage_seconds(stages),
    }
    bundle = ModelBundle(
        feature_set=feature_set, columns=[str(c) for c in data.columns], scaler=spaces.scaler, encoder=spaces.encoder,
        latent_clusterer=latent_clusterer, raw_clusterer=raw_clusterer, params=params, keras_model=ae.model_,
        history=ae.history_, served_space=served.space, trust=trust,
    )
    log.info("model.fitted", feature_set=feature_set, served=served.space, clusters=metrics["served"]["clusters"],
             noise=round(metrics["served"]["noise_ratio"], 4), seconds=metrics["seconds"]["total"])
    return bundle, metrics


def _labels_at_sample(space: str, latent: DensityClusterer, raw: DensityClusterer | None, rows: _Rows) -> np.ndarray:
    """The full fit's labels of the selection sample's rows, in the served space."""
    if space == RAW and raw is not None:
        return raw.labels_[rows.sample_in_raw]
    return latent.labels_[rows.sample]


def raw_baseline_rows(n_rows: int, max_rows: int | None) -> np.ndarray:
    """Rows (in canonical shop_id order) the raw baseline is fitted on: all, or ``max_rows`` evenly spaced."""
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, max_rows).round().astype(np.int64))


def bounded_rows(n_rows: int, max_rows: int | None) -> np.ndarray | None:
    """``max_rows`` evenly spaced rows when there are more rows than that, else ``None`` (use every row)."""
    return None if max_rows is None or n_rows <= max_rows else raw_baseline_rows(n_rows, max_rows)


def _raw_report(clusterer: DensityClusterer, scaled: np.ndarray, truth: np.ndarray | None,
                rows: np.ndarray) -> dict[str, Any]:
    """The baseline's report over the rows it was fitted on (``sample`` says how many of all rows)."""
    report = clustering_report(clusterer.labels_, scaled[rows], None if truth is None else truth[rows],
                               dbcv=clusterer.relative_validity_)
    return {**report, "sample": len(rows), "of": len(scaled)}


def _history_summary(history: dict[str, list[float]]) -> dict[str, Any]:
    val = history.get("val_loss") or []
    return {
        "epochs_run": len(history.get("loss", [])),
        "final_loss": history["loss"][-1] if history.get("loss") else None,
        "best_val_loss": min(val) if val else None,
        "history": history,
    }
