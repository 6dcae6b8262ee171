"""scikit-learn's estimator convention, kept in one place for the project's estimators."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any


def keep_params(estimator: Any, values: Mapping[str, Any]) -> None:
    """Store every ``__init__`` parameter of ``estimator`` unchanged under its own name (``values`` is the
    ``__init__``'s ``locals()``): scikit-learn's ``get_params``, ``set_params`` and ``clone`` read them back, and
    validation waits for ``fit``."""
    for name in inspect.signature(type(estimator).__init__).parameters:
        if name != "self":
            setattr(estimator, name, values[name])
