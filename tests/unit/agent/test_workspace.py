from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ferrous.agent.workspace import SourceTree


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text("*.log\n")
    (root / "tracked.txt").write_text("v1")
    (root / "deleted.txt").write_text("gone soon")
    (root / "src").mkdir()
    (root / "src/run.sh").write_text("#!/bin/sh\n")
    (root / "src/run.sh").chmod(0o755)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    (root / "tracked.txt").write_text("v2, uncommitted")
    (root / "deleted.txt").unlink()
    (root / "new.txt").write_text("untracked")
    (root / "debug.log").write_text("ignored")
    (root / ".ferrous").mkdir()
    (root / ".ferrous/state").write_text("ours")
    return root


def test_git_checkout_lists_what_git_sees(repo: Path) -> None:
    tree = SourceTree.scan(repo, skip=[repo / ".ferrous"])
    assert tree.is_git
    assert set(tree.files) == {".gitignore", "tracked.txt", "deleted.txt", "src/run.sh", "new.txt"}


def test_copy_takes_uncommitted_changes_and_skips_deleted_files(repo: Path, tmp_path: Path) -> None:
    tree = SourceTree.scan(repo, skip=[repo / ".ferrous"])
    target = tmp_path / "ws"
    tree.copy_to(target)
    assert (target / "tracked.txt").read_text() == "v2, uncommitted"
    assert not (target / "deleted.txt").exists()
    assert not (target / "debug.log").exists()
    assert not (target / ".git").exists()
    assert os.access(target / "src/run.sh", os.X_OK)
    source_mtime = (repo / "src/run.sh").stat().st_mtime_ns
    assert (target / "src/run.sh").stat().st_mtime_ns == source_mtime


def test_untracked_in_a_git_workspace(repo: Path, tmp_path: Path) -> None:
    tree = SourceTree.scan(repo, skip=[repo / ".ferrous"])
    target = tmp_path / "ws"
    tree.copy_to(target)
    (target / "made.txt").write_text("by the job")
    (target / "made.log").write_text("ignored by .gitignore")
    assert sorted(tree.untracked(target)) == ["made.txt", "new.txt"]


def test_without_git_everything_but_skipped_folders(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "a/b").mkdir(parents=True)
    (root / "a/b/c.txt").write_text("c")
    (root / "top").write_text("t")
    os.symlink("top", root / "link")
    (root / ".ferrous/runs").mkdir(parents=True)
    (root / ".ferrous/runs/x").write_text("x")
    tree = SourceTree.scan(root, skip=[root / ".ferrous"])
    assert not tree.is_git
    assert tree.files == ("a/b/c.txt", "link", "top")
    target = tmp_path / "ws"
    tree.copy_to(target)
    assert os.readlink(target / "link") == "top"
    (target / "new").write_text("n")
    assert tree.untracked(target) == ["new"]


def test_many_files_are_copied_in_parallel(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(600):
        folder = root / f"d{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_text(str(i))
    tree = SourceTree.scan(root)
    target = tmp_path / "ws"
    tree.copy_to(target)
    assert len(list(target.rglob("f*"))) == 600
    assert (target / "d3/f3").read_text() == "3"


def test_a_folder_listed_as_one_entry_is_copied_whole(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "sub/inner").mkdir(parents=True)
    (root / "sub/inner/f").write_text("f")
    tree = SourceTree(root, ("sub",), is_git=True)  # what git lists for a submodule
    tree.copy_to(tmp_path / "ws")
    assert (tmp_path / "ws/sub/inner/f").read_text() == "f"
