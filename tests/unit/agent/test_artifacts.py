from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferrous.agent.artifacts import LocalArtifactStore, matches_when, select_artifacts
from ferrous.domain.errors import UnsafeArchive
from ferrous.pipeline_config.plan import Artifacts


def make(root: Path, *paths: str) -> None:
    for rel in paths:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rel)


def test_select_expands_variables_and_adds_untracked_only_when_asked(workspace: Path) -> None:
    make(workspace, "out/linux/bin", "new")
    spec = Artifacts(paths=("out/$OS/",))
    asked: list[bool] = []

    def untracked() -> list[str]:
        asked.append(True)
        return ["new"]

    assert select_artifacts(spec, workspace, {"OS": "linux"}, untracked).files == ["out/linux/bin"]
    assert asked == []
    spec = Artifacts(paths=(), untracked=True)
    assert select_artifacts(spec, workspace, {}, untracked).files == ["new"]


def test_save_and_unpack_round_trip(tmp_path: Path, workspace: Path) -> None:
    make(workspace, "out/bin", "out/lib/x.so")
    (workspace / "out/bin").chmod(0o755)
    os.symlink("bin", workspace / "out/alias")
    store = LocalArtifactStore(tmp_path / "store")
    store.upload("build", workspace, ["out/bin", "out/lib/x.so", "out/alias"], "artifacts")
    assert store.files("build") == ["out/alias", "out/bin", "out/lib/x.so"]
    assert store.archive("build") == tmp_path / "store" / "build.tar.zst"
    target = tmp_path / "next"
    target.mkdir()
    assert store.download("build", target) == 3
    assert (target / "out/bin").read_text() == "out/bin"
    assert os.access(target / "out/bin", os.X_OK)
    assert os.readlink(target / "out/alias") == "bin"
    assert store.download("nothing", target) is None


def test_saving_again_replaces_the_whole_set(tmp_path: Path, workspace: Path) -> None:
    make(workspace, "a", "b")
    store = LocalArtifactStore(tmp_path / "store")
    store.upload("job", workspace, ["a", "b"], "artifacts")
    store.upload("job", workspace, ["b"], "artifacts")
    assert store.files("job") == ["b"]
    assert sorted(os.listdir(tmp_path / "store")) == ["job.tar.zst"]


def test_unpacking_never_writes_through_a_symlink(tmp_path: Path, workspace: Path) -> None:
    make(workspace, "out/bin")
    store = LocalArtifactStore(tmp_path / "store")
    store.upload("build", workspace, ["out/bin"], "artifacts")
    victim = tmp_path / "victim"
    victim.mkdir()
    target = tmp_path / "next"
    target.mkdir()
    os.symlink(victim, target / "out")  # the source has a symlink where the folder goes
    with pytest.raises(UnsafeArchive, match="out/bin: would write through a symlink"):
        store.download("build", target)
    assert os.listdir(victim) == []


def test_when() -> None:
    assert matches_when("on_success", succeeded=True)
    assert not matches_when("on_success", succeeded=False)
    assert matches_when("on_failure", succeeded=False)
    assert not matches_when("on_failure", succeeded=True)
    assert matches_when("always", succeeded=False)
