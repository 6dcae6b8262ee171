"""Deterministic files from a Keras training run: the ``.keras`` model and the loss-curve PNG.

Nothing here imports TensorFlow: the functions receive a model object or a history dict.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_keras_stable(model: Any, path: str | Path, saved_at: str | None = None) -> Path:
    """``model.save`` then rewrite the zip so equal weights give equal bytes.

    Keras stamps ``metadata.json`` with the wall-clock ``date_saved``, the weights entry with the current zip
    time, and ``config.json`` with ``id()``s of shared objects (e.g. the float32 dtype policy); they are
    replaced by ``saved_at`` (or ``"unspecified"``), 1980-01-01 and 1, 2, ... The HDF5 weights are byte-stable.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path: must end with .keras, got {path.name}")
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as src:
            members = {info.filename: src.read(info.filename) for info in src.infolist()}
    finally:
        tmp.unlink(missing_ok=True)
    if "metadata.json" in members:
        meta = json.loads(members["metadata.json"])
        meta["date_saved"] = saved_at or "unspecified"
        members["metadata.json"] = json.dumps(meta, sort_keys=True).encode()
    if "config.json" in members:
        config = _renumber_shared_objects(json.loads(members["config.json"]), {})
        members["config.json"] = json.dumps(config).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as dst:
        for name in sorted(members):
            dst.writestr(zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), members[name])
    path.write_bytes(buffer.getvalue())
    return path


def _renumber_shared_objects(node: Any, ids: dict[int, int]) -> Any:
    """Replace Keras' ``shared_object_id`` values (Python ``id()``s, different in every process) by 1, 2, ...

    in order of first appearance; objects that shared an id still share one, so loading is unchanged.
    """
    if isinstance(node, dict):
        out = {key: _renumber_shared_objects(value, ids) for key, value in node.items()}
        if isinstance(out.get("shared_object_id"), int):
            out["shared_object_id"] = ids.setdefault(out["shared_object_id"], len(ids) + 1)
        return out
    if isinstance(node, list):
        return [_renumber_shared_objects(value, ids) for value in node]
    return node


def save_loss_curve(history: dict[str, list[float]], path_png: str | Path) -> Path:
    """Plot training / validation loss per epoch to a PNG (matplotlib Agg backend)."""
    from matplotlib.figure import Figure  # a bare Figure renders PNG with Agg, without touching pyplot

    if "loss" not in history:
        raise ValueError("history: missing the 'loss' series")
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss")
    ax.set_title("Autoencoder loss")
    ax.legend()
    fig.tight_layout()
    path = Path(path_png)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
