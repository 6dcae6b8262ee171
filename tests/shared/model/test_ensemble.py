"""The autoencoder ensemble: member rows, the concatenated encoder and its file, and what a fit serves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from shared.model import ModelBundle, ModelParams, fit_bundle
from shared.model.autoencoder import Autoencoder
from shared.model.fit import member_rows
from shared.model.numpy_encoder import EnsembleEncoder, NumpyEncoder, encoder_of, load_encoder
from shared.model.schedule import ensemble_members


def _features(n: int = 240) -> pd.DataFrame:
    x, _ = make_blobs(n_samples=n, centers=3, n_features=6, cluster_std=0.6, random_state=3)
    return pd.DataFrame(x, index=[f"S{i:04d}" for i in range(n)], columns=[f"f{j}" for j in range(6)])


@pytest.fixture(scope="module")
def members() -> list[NumpyEncoder]:
    x = _features().to_numpy()
    return [Autoencoder(epochs=2, batch_size=64, seed=s).fit(x).to_numpy_encoder() for s in (1, 2)]


def test_member_rows_share_the_rows_out_once_there_are_enough() -> None:
    params = ModelParams(autoencoder_members=4, autoencoder_member_rows=100)
    few = member_rows(np.arange(90), params)
    assert len(few) == 4 and all(np.array_equal(r, np.arange(90)) for r in few)  # fewer than member_rows: all
    many = member_rows(np.arange(1000), params)
    assert [len(r) for r in many] == [250] * 4  # 1000 / 4 > 100: each member its quarter
    assert len(np.unique(np.concatenate(many))) == 1000  # shifted: every row trains one member
    some = member_rows(np.arange(200), params)
    assert [len(r) for r in some] == [100] * 4 and not np.array_equal(some[0], some[2])  # every 2nd row, shifted
    assert member_rows(np.arange(1000), ModelParams(autoencoder_members=1))[0].tolist() == list(range(1000))


def test_the_ensemble_grows_where_the_data_are_few() -> None:
    derived = ModelParams()
    assert [ensemble_members(n, derived) for n in (30, 1000, 7500, 8000, 10_000, 12_000, 15_000, 1_000_000)] == [
        8, 8, 8, 7, 6, 5, 4, 4]
    assert ensemble_members(1000, ModelParams(autoencoder_members=2)) == 2  # explicit wins
    assert ensemble_members(1000, ModelParams(autoencoder_members_max=6, autoencoder_ensemble_rows=3000)) == 4
    assert ModelParams().with_ensemble_for(5000).autoencoder_members == 8 and ModelParams().autoencoder_members is None


def test_the_ensemble_concatenates_and_its_file_is_byte_stable(tmp_path: Path, members: list) -> None:
    x = _features().to_numpy()
    ensemble = encoder_of(members)
    assert isinstance(ensemble, EnsembleEncoder) and ensemble.latent_dim == sum(m.latent_dim for m in members)
    np.testing.assert_array_equal(ensemble.transform(x), np.hstack([m.transform(x) for m in members]))
    first, second = ensemble.save(tmp_path / "a.npz"), ensemble.save(tmp_path / "b.npz")
    assert first.read_bytes() == second.read_bytes()
    np.testing.assert_array_equal(load_encoder(first).transform(x), ensemble.transform(x))
    assert encoder_of(members[:1]) is members[0]  # one member keeps the single-encoder file
    assert isinstance(load_encoder(members[0].save(tmp_path / "one.npz")), NumpyEncoder)
    with pytest.raises(ValueError, match="format_version 2 is not supported"):
        NumpyEncoder.load(first)


def test_a_fit_serves_the_ensemble_and_one_member_serves_one_encoder(tmp_path: Path) -> None:
    features = _features()
    kwargs = {"epochs": 2, "batch_size": 64, "min_cluster_size": 15, "raw_baseline": False}
    bundle, metrics = fit_bundle(features, "behaviour-v4", ModelParams(autoencoder_members=3, **kwargs))
    assert isinstance(bundle.encoder, EnsembleEncoder) and len(bundle.encoder.members) == 3
    assert metrics["autoencoder"]["members"] == 3 and metrics["autoencoder"]["member_rows"] == len(features)
    bundle.save(tmp_path / "ens")
    loaded = ModelBundle.load(tmp_path / "ens")
    np.testing.assert_array_equal(loaded.assign(features)[0], bundle.assign(features)[0])
    single, _ = fit_bundle(features, "behaviour-v4", ModelParams(autoencoder_members=1, **kwargs))
    assert isinstance(single.encoder, NumpyEncoder)
    # model seed s trains members s x 3 ... s x 3 + 2: the single fit with seed 3 x 42 is the first member
    again, _ = fit_bundle(features, "behaviour-v4", ModelParams(autoencoder_members=1, seed=3 * 42, **kwargs))
    np.testing.assert_array_equal(bundle.encoder.members[0].latent_kernel, again.encoder.latent_kernel)
    assert not np.array_equal(bundle.encoder.members[0].latent_kernel, single.encoder.latent_kernel)


def test_the_selection_seed_agreement_compares_the_ensemble_halves() -> None:
    """With 3 members, the seed agreement is the ARI of the candidate's density fitted on member 0's latent columns
    and on members 1-2's (every row is the sample here): no autoencoder beyond the ensemble is trained."""
    from sklearn.metrics import adjusted_rand_score

    from shared.clustering import DensityClusterer

    features = _features()
    params = ModelParams(autoencoder_members=3, epochs=2, batch_size=64, min_cluster_size=15, raw_baseline=False)
    bundle, metrics = fit_bundle(features, "behaviour-v4", params)
    latent = bundle.encoder.transform(bundle.scaler.transform(features.sort_index().to_numpy(dtype=np.float64)))
    dim = params.latent_dim
    for candidate in metrics["selection"]["candidates"]:
        def labels(points: np.ndarray, c: dict = candidate) -> np.ndarray:
            return DensityClusterer(min_cluster_size=c["sample_min_cluster_size"], min_samples=c["min_samples"],
                                    cluster_selection_method=params.cluster_selection_method).fit(points).labels_

        expected = adjusted_rand_score(labels(latent[:, :dim]), labels(latent[:, dim:]))
        assert candidate["seed_agreement"] == pytest.approx(expected, abs=1e-6)


def test_a_fit_with_the_derived_ensemble_records_its_size(tmp_path: Path) -> None:
    """No ``autoencoder_members``: 240 retailers get the largest ensemble, recorded in the metrics and the bundle's
    parameters (a loaded model does not derive it again)."""
    features = _features()
    params = ModelParams(epochs=2, batch_size=64, min_cluster_size=15, raw_baseline=False, autoencoder_members_max=5)
    bundle, metrics = fit_bundle(features, "behaviour-v4", params)
    assert metrics["autoencoder"]["members"] == 5 and len(bundle.encoder.members) == 5
    bundle.save(tmp_path / "derived")
    assert ModelBundle.load(tmp_path / "derived").params.autoencoder_members == 5
