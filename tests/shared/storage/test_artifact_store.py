"""The fsspec artifact store on a plain folder, ``file://`` and ``memory://``: round trips, immutability, and
that a crash at any point leaves no half-written artifact visible."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from shared.artifacts import ArtifactIntegrityError, manifest_sha256, write_manifest
from shared.storage import ArtifactStore
from shared.storage.artifact_store import COMMIT_MARKER


@pytest.fixture(params=["path", "file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "memory":
        return ArtifactStore(f"memory://stableseg-test-{uuid.uuid4().hex}/artifacts")
    root = tmp_path / "store"
    return ArtifactStore(str(root) if request.param == "path" else f"file://{root}")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    (directory / "clusterers").mkdir(parents=True)
    (directory / "encoder.keras").write_bytes(bytes(range(256)) * 40)
    (directory / "clusterers" / "latent.joblib").write_bytes(b"\x80\x05latent")
    (directory / "insights.csv").write_text("cluster,size\n0,120\n-1,7\n")
    write_manifest(directory, {"feature_set": "seed-v1"})
    return directory


def _files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_round_trip_keeps_every_file_and_verifies_the_manifest(
    store: ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    assert not store.exists("v0001")
    uri = store.put_dir(model_dir, "v0001")
    assert uri == store.uri_for("v0001") and "://" in uri
    assert store.exists(uri) and store.exists("v0001") and store.list_names() == ["v0001"]
    fetched = store.get_dir(uri, tmp_path / "cache" / "v0001", expected_sha256=manifest_sha256(model_dir))
    assert _files(fetched) == _files(model_dir)  # the commit marker is not part of the artifact


def test_artifacts_are_immutable(store: ArtifactStore, model_dir: Path) -> None:
    store.put_dir(model_dir, "v0001")
    (model_dir / "insights.csv").write_text("changed")
    with pytest.raises(FileExistsError, match="immutable"):
        store.put_dir(model_dir, "v0001")


def test_crash_during_upload_leaves_nothing_visible(
    store: ArtifactStore, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put, calls = store.fs.put_file, []

    def put_then_crash(lpath: str, rpath: str, **kwargs: object) -> None:
        calls.append(rpath)
        if len(calls) == 3:
            raise OSError("simulated crash: connection lost")
        real_put(lpath, rpath, **kwargs)

    monkeypatch.setattr(store.fs, "put_file", put_then_crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.put_dir(model_dir, "v0002")
    monkeypatch.undo()
    assert len(calls) == 3  # two files had been written when it failed
    assert not store.exists("v0002") and store.list_names() == []
    assert not store.fs.exists(store.root + "/v0002")
    assert store.fs.ls(store.root, detail=False) == []  # the temporary upload was cleaned up as well
    with pytest.raises(FileNotFoundError, match="not a committed artifact"):
        store.get_dir("v0002", tmp_path / "out")
    store.put_dir(model_dir, "v0002")  # a retry succeeds
    assert store.exists("v0002")


def test_crash_before_the_commit_marker_is_replaced_by_the_next_put(
    store: ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    uri = store.put_dir(model_dir, "v0003")
    store.fs.rm_file(f"{store.root}/v0003/{COMMIT_MARKER}")  # renamed into place, marker never written
    store.fs.rm_file(f"{store.root}/v0003/insights.csv")
    assert not store.exists(uri) and store.list_names() == []
    store.put_dir(model_dir, "v0003")
    assert _files(store.get_dir(uri, tmp_path / "out")) == _files(model_dir)
    marker = json.loads(store.fs.cat_file(f"{store.root}/v0003/{COMMIT_MARKER}"))
    assert marker["name"] == "v0003" and marker["files"] == len(_files(model_dir))


def test_get_dir_refuses_tampered_or_unexpected_artifacts(
    store: ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    uri = store.put_dir(model_dir, "v0004")
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        store.get_dir(uri, tmp_path / "a", expected_sha256="0" * 64)  # not the registry's record
    store.fs.pipe_file(f"{store.root}/v0004/clusterers/latent.joblib", b"\x80\x05evil")
    with pytest.raises(ArtifactIntegrityError, match=r"latent\.joblib"):
        store.get_dir(uri, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing half-downloaded is left
    assert not list(tmp_path.glob(".*partial*"))


def test_bad_input_names_the_field(store: ArtifactStore, model_dir: Path, tmp_path: Path) -> None:
    for name in ("../escape", "", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="name"):
            store.put_dir(model_dir, name)
    with pytest.raises(FileNotFoundError, match="local_dir"):
        store.put_dir(tmp_path / "missing", "v1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files"):
        store.put_dir(tmp_path / "empty", "v1")
    uri = store.put_dir(model_dir, "v1")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="local_dir"):
        store.get_dir(uri, tmp_path / "busy")
    assert (tmp_path / "busy" / "x").read_text() == "keep me"


def test_delete_hides_first_then_removes(store: ArtifactStore, model_dir: Path) -> None:
    uri = store.put_dir(model_dir, "v0005")
    store.delete(uri)
    assert not store.exists(uri) and not store.fs.exists(f"{store.root}/v0005")
