"""``shared.estimator.keep_params``: the project's estimators follow scikit-learn's parameter convention."""

from __future__ import annotations

import inspect

import pytest
from sklearn.base import BaseEstimator, clone

from shared.clustering import DensityClusterer
from shared.model.autoencoder import Autoencoder

CHANGED = {DensityClusterer: {"min_cluster_size": 7, "metric": "manhattan", "min_samples": 3},
           Autoencoder: {"epochs": 3, "seed": 5, "latent_dim": 4, "verbose": 1}}


@pytest.mark.parametrize("cls", [DensityClusterer, Autoencoder])
def test_every_init_parameter_is_kept_and_cloned(cls: type[BaseEstimator]) -> None:
    signature = inspect.signature(cls.__init__)
    defaults = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert cls().get_params() == defaults
    estimator = cls(**CHANGED[cls])
    assert estimator.get_params() == {**defaults, **CHANGED[cls]}
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params() == estimator.get_params()
    assert cls(**CHANGED[cls]).set_params(**defaults).get_params() == defaults
