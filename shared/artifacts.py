"""Checksummed artifact directories: ``manifest.json`` records the SHA-256 of every file.

The registry records one checksum per model version, :func:`manifest_sha256`; the manifest in turn pins
every file. Loaders call :func:`verify_manifest` (optionally against the registry's checksum) before
reading anything, and pickle-based files only through :func:`load_joblib_verified`.
The manifest's content is a pure function of the directory's files and the caller's ``meta``: no wall-clock
time is added (pass ``created`` in ``meta`` if you want one).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_CHUNK = 1 << 20
_LIBRARIES = ("numpy", "scikit-learn", "hdbscan", "keras", "joblib")


class ArtifactIntegrityError(Exception):
    """An artifact is missing, altered, or not covered by the manifest."""


@dataclass(frozen=True)
class Manifest:
    """Parsed ``manifest.json``: checksums by relative path plus descriptive metadata."""

    files: dict[str, str]
    feature_set: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "feature_set": self.feature_set,
            "files": dict(sorted(self.files.items())),
            "meta": self.meta,
            "params": self.params,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        files = data.get("files")
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ArtifactIntegrityError(f"{MANIFEST}: 'files' must map relative paths to SHA-256 hex digests")
        return cls(
            files=dict(files),
            feature_set=data.get("feature_set"),
            params=dict(data.get("params") or {}),
            versions=dict(data.get("versions") or {}),
            created=data.get("created"),
            meta=dict(data.get("meta") or {}),
        )


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the numeric libraries an artifact depends on (TensorFlow only when it is loaded)."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "__version__"):
        versions["tensorflow"] = str(tf.__version__)
    return versions


def _list_files(directory: Path) -> list[str]:
    return sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def write_manifest(directory: str | Path, meta: dict[str, Any]) -> Manifest:
    """Checksum every file under ``directory`` and write ``manifest.json``.

    ``meta`` may carry ``feature_set``, ``params``, ``created`` and anything else JSON-serialisable
    (kept under ``meta``). Same files + same ``meta`` -> byte-identical manifest.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory: {directory} does not exist")
    extra = {k: v for k, v in meta.items() if k not in ("feature_set", "params", "created")}
    manifest = Manifest(
        files={rel: sha256_file(directory / rel) for rel in _list_files(directory)},
        feature_set=meta.get("feature_set"),
        params=dict(meta.get("params") or {}),
        versions=library_versions(),
        created=meta.get("created"),
        meta=extra,
    )
    try:
        text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta: must be JSON-serialisable without NaN/inf ({exc})") from exc
    (directory / MANIFEST).write_text(text + "\n", encoding="utf-8")
    return manifest


def manifest_sha256(directory: str | Path) -> str:
    """SHA-256 of ``manifest.json``: the single checksum a registry records for the whole directory."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactIntegrityError(f"{path}: manifest missing")
    return sha256_file(path)


def verify_manifest(directory: str | Path, expected_sha256: str | None = None) -> Manifest:
    """Recompute every checksum; raise :class:`ArtifactIntegrityError` naming the first bad file.

    With ``expected_sha256`` (the registry's record) the manifest itself is checked first. Files present
    but not listed are ignored here; they can never be loaded through :func:`load_joblib_verified`.
    """
    directory = Path(directory)
    actual = manifest_sha256(directory)
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ArtifactIntegrityError(
            f"{directory / MANIFEST}: sha256 {actual} does not match the recorded {expected_sha256}"
        )
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactIntegrityError(f"{directory / MANIFEST}: not valid JSON ({exc})") from exc
    manifest = Manifest.from_dict(data)
    root = directory.resolve()
    for rel, expected in sorted(manifest.files.items()):
        path = (directory / rel).resolve()
        if not path.is_relative_to(root):
            raise ArtifactIntegrityError(f"{rel}: path escapes the artifact directory")
        if not path.is_file():
            raise ArtifactIntegrityError(f"{rel}: listed in the manifest but missing")
        if sha256_file(path) != expected:
            raise ArtifactIntegrityError(f"{rel}: sha256 mismatch (file altered or corrupt)")
    return manifest


def load_joblib_verified(
    directory: str | Path, name: str, expected_sha256: str | None = None, manifest: Manifest | None = None
) -> Any:
    """Verify, then ``joblib.load`` one listed file (joblib is pickle: never load unverified bytes).

    Without ``manifest`` the whole directory is verified first. Either way the exact bytes that get
    unpickled are hashed again and compared with the manifest (no window between check and load).
    """
    import joblib

    directory = Path(directory)
    if manifest is None:
        manifest = verify_manifest(directory, expected_sha256)
    if name not in manifest.files:
        raise ArtifactIntegrityError(f"{name}: not listed in {MANIFEST}; refusing to unpickle it")
    try:
        payload = (directory / name).read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactIntegrityError(f"{name}: listed in the manifest but missing") from exc
    if hashlib.sha256(payload).hexdigest() != manifest.files[name]:
        raise ArtifactIntegrityError(f"{name}: sha256 mismatch (file altered or corrupt)")
    return joblib.load(io.BytesIO(payload))
