"""Artifact directories in any fsspec filesystem (a local folder by default, object storage in production).

A version becomes visible only when complete: files go to a temporary name, are renamed into place (atomic on a
local filesystem), and a ``_COMMITTED`` marker is written last. Anything without the marker is the leftover of a
crash: invisible to ``exists``/``get_dir``/``list_names`` and replaced by the next ``put_dir`` of that name.
Checksums are the manifest's business (:mod:`shared.artifacts`); ``get_dir`` verifies them after downloading.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from contextlib import suppress
from pathlib import Path

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from shared.artifacts import MANIFEST, verify_manifest
from shared.logging import get_logger
from shared.storage.models import utcnow

log = get_logger(__name__)
COMMIT_MARKER = "_COMMITTED"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"name: {name!r} must be 1-128 characters of letters, digits, '.', '_', '-' "
            "(starting with a letter or digit)"
        )
    return name


class ArtifactStore:
    """``put_dir`` / ``get_dir`` / ``exists`` for whole directories under one fsspec root URL."""

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self.uri = str(uri)
        self.fs: AbstractFileSystem
        self.fs, self.root = url_to_fs(self.uri)
        self.root = self.root.rstrip("/") or "/"
        if isinstance(self.fs, LocalFileSystem):  # object stores have no directories (and no bucket creation here)
            self.fs.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    # --- locations ---------------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{_check_name(name)}"

    def uri_for(self, name: str) -> str:
        """The full URL an artifact called ``name`` has (or would have) in this store."""
        return self.fs.unstrip_protocol(self._path(name))

    def _resolve(self, uri: str) -> tuple[AbstractFileSystem, str]:
        """A bare name means this store; anything else is an fsspec URL or path."""
        if NAME_PATTERN.match(uri):
            return self.fs, self._path(uri)
        fs, path = url_to_fs(uri)
        return fs, path.rstrip("/")

    # --- writing -----------------------------------------------------------------------------------------
    def put_dir(self, local_dir: str | os.PathLike[str], name: str) -> str:
        """Upload every file under ``local_dir`` as artifact ``name``; returns its URI. Artifacts are immutable:
        an existing committed ``name`` is an error."""
        source = Path(local_dir)
        if not source.is_dir():
            raise FileNotFoundError(f"local_dir: {source} is not a directory")
        files = sorted(p for p in source.rglob("*") if p.is_file())
        if not files:
            raise ValueError(f"local_dir: {source} contains no files")
        final, uri = self._path(name), self.uri_for(name)
        if self.fs.exists(f"{final}/{COMMIT_MARKER}"):
            raise FileExistsError(f"name: artifact {name!r} already exists at {uri} (artifacts are immutable)")
        if self.fs.exists(final):
            log.warning("artifacts.leftover_removed", name=name, uri=uri)
            self.fs.rm(final, recursive=True)
        started, tmp = time.perf_counter(), f"{self.root.rstrip('/')}/.tmp-{name}-{uuid.uuid4().hex}"
        try:
            for path in files:
                target = f"{tmp}/{path.relative_to(source).as_posix()}"
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(path), target)
            self._rename(tmp, final)
        except BaseException:
            with suppress(Exception):
                self.fs.rm(tmp, recursive=True)
            raise
        marker = {"name": name, "files": len(files), "committed_at": utcnow().isoformat()}
        self.fs.pipe_file(f"{final}/{COMMIT_MARKER}", json.dumps(marker).encode())
        log.info(
            "artifacts.put",
            name=name,
            uri=uri,
            files=len(files),
            bytes=sum(p.stat().st_size for p in files),
            seconds=round(time.perf_counter() - started, 3),
        )
        return uri

    def _rename(self, tmp: str, final: str) -> None:
        if isinstance(self.fs, LocalFileSystem):
            os.rename(tmp, final)  # atomic; fails if another writer got there first with a non-empty directory
        else:
            self.fs.mv(tmp, final, recursive=True)

    def delete(self, uri: str) -> None:
        """Remove an artifact (the marker first, so a half-deleted artifact is never visible)."""
        fs, path = self._resolve(uri)
        with suppress(FileNotFoundError):
            fs.rm_file(f"{path}/{COMMIT_MARKER}")
        if fs.exists(path):
            fs.rm(path, recursive=True)

    # --- reading -----------------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        """True when ``uri`` (or a bare name in this store) is a complete, committed artifact."""
        fs, path = self._resolve(uri)
        return bool(fs.exists(f"{path}/{COMMIT_MARKER}"))

    def list_names(self) -> list[str]:
        """Names of the committed artifacts in this store, sorted."""
        if not self.fs.exists(self.root):
            return []
        names = []
        for entry in self.fs.ls(self.root, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if NAME_PATTERN.match(name) and self.fs.exists(f"{entry.rstrip('/')}/{COMMIT_MARKER}"):
                names.append(name)
        return sorted(names)

    def get_dir(self, uri: str, local_dir: str | os.PathLike[str], expected_sha256: str | None = None) -> Path:
        """Download a committed artifact into ``local_dir`` (which must not exist or be empty) and verify it.

        The manifest is verified when present, and required when ``expected_sha256`` (the registry's record)
        is given; on any failure nothing is left at ``local_dir``.
        """
        fs, path = self._resolve(uri)
        if not fs.exists(f"{path}/{COMMIT_MARKER}"):
            raise FileNotFoundError(f"uri: {uri} is not a committed artifact")
        target = Path(local_dir)
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"local_dir: {target} exists and is not empty")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f".{target.name}.partial-{uuid.uuid4().hex}"
        try:
            prefix = fs._strip_protocol(path).rstrip("/") + "/"
            for remote in fs.find(path):
                relative = remote[len(prefix) :] if remote.startswith(prefix) else remote.rsplit("/", 1)[-1]
                if relative == COMMIT_MARKER:
                    continue
                (partial / relative).parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(remote, str(partial / relative))
            if expected_sha256 is not None or (partial / MANIFEST).is_file():
                verify_manifest(partial, expected_sha256)
            if target.exists():
                target.rmdir()
            os.rename(partial, target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return target
