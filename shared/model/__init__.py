"""Model package: autoencoder (TensorFlow, training only), numpy encoder, bundle, the shared fit.

Importing this package never imports TensorFlow; only :mod:`shared.model.autoencoder` does, lazily.
"""

from shared.model.bundle import ModelBundle
from shared.model.fit import canonical_order, fit_bundle
from shared.model.numpy_encoder import NumpyEncoder
from shared.model.params import ModelParams

__all__ = ["ModelBundle", "ModelParams", "NumpyEncoder", "canonical_order", "fit_bundle"]
