"""Fetching a model version's bundle: download from the artifact store, verify, load (numpy encoder, no TF).

The checksum that counts is the registry's (``ModelVersionInfo.sha256``): an announcement whose sha256 differs
from it is refused before anything is downloaded, and the downloaded manifest and every file are verified
against it (``ArtifactStore.get_dir``, then again by ``ModelBundle.load``) before anything is unpickled. Verified
bundles are cached under ``<data_dir>/assigner-models/v<version>-<sha>``; a cached copy that no longer verifies is
fetched again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shared.artifacts import ArtifactIntegrityError
from shared.logging import get_logger
from shared.model.bundle import ModelBundle
from shared.storage import ArtifactStore, ModelVersionInfo

log = get_logger("stableseg.assigner.loader")


class ModelRefused(Exception):
    """A model version that must not be served (not published, no artifact, checksum mismatch, unreadable)."""


class BundleLoader:
    """``load(info, announced_sha256=None) -> ModelBundle`` or :class:`ModelRefused`."""

    def __init__(self, store: ArtifactStore, cache_dir: str | Path) -> None:
        self.store = store
        self.cache_dir = Path(cache_dir)

    def load(self, info: ModelVersionInfo, announced_sha256: str | None = None) -> ModelBundle:
        if info.status not in ("published", "retired"):
            raise ModelRefused(f"version {info.version} is {info.status}; only a published version can be served")
        if not info.artifact_uri or not info.sha256:
            raise ModelRefused(f"version {info.version} has no artifact_uri/sha256 in the registry")
        if announced_sha256 is not None and announced_sha256 != info.sha256:
            raise ModelRefused(f"sha256: the announcement says {announced_sha256} but the registry recorded "
                               f"{info.sha256} for version {info.version}")
        local = self.cache_dir / f"v{info.version}-{info.sha256[:16]}"
        if local.is_dir():
            try:
                return ModelBundle.load(local, expected_sha256=info.sha256)
            except (ArtifactIntegrityError, ValueError, OSError) as exc:
                log.warning("assigner.cache_invalid", version=info.version, error=str(exc))
                shutil.rmtree(local, ignore_errors=True)
        try:
            self.store.get_dir(info.artifact_uri, local, expected_sha256=info.sha256)
            bundle = ModelBundle.load(local, expected_sha256=info.sha256)
        except (ArtifactIntegrityError, FileNotFoundError, ValueError) as exc:
            shutil.rmtree(local, ignore_errors=True)
            raise ModelRefused(f"version {info.version}: {exc}") from exc
        log.info("assigner.model_loaded", version=info.version, feature_set=bundle.feature_set, path=str(local))
        return bundle
