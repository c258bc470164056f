from __future__ import annotations

import os
from pathlib import Path

from ferrous.agent.file_selection import relative_pattern, select_files


def make(root: Path, *paths: str) -> None:
    for rel in paths:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rel)


def test_literal_files_and_directories_recursively(workspace: Path) -> None:
    make(workspace, "out/bin", "out/lib/a.so", "out/lib/deep/b.so", "README")
    selection = select_files(workspace, ["out/", "README"])
    assert selection.files == ["README", "out/bin", "out/lib/a.so", "out/lib/deep/b.so"]
    assert selection.warnings == []


def test_globs(workspace: Path) -> None:
    make(workspace, "a.txt", "b.log", "dir/c.txt", "dir/sub/d.txt", ".hidden.txt")
    assert select_files(workspace, ["*.txt"]).files == [".hidden.txt", "a.txt"]
    assert select_files(workspace, ["**/*.txt"]).files == [
        ".hidden.txt",
        "a.txt",
        "dir/c.txt",
        "dir/sub/d.txt",
    ]
    assert select_files(workspace, ["dir/**"]).files == ["dir/c.txt", "dir/sub/d.txt"]
    assert select_files(workspace, ["d?r/*.txt"]).files == ["dir/c.txt"]
    assert select_files(workspace, ["{a,b}.*"]).files == ["a.txt", "b.log"]


def test_a_glob_naming_a_directory_takes_its_content(workspace: Path) -> None:
    make(workspace, "build-1/x", "build-2/y/z")
    assert select_files(workspace, ["build-*"]).files == ["build-1/x", "build-2/y/z"]


def test_exclude(workspace: Path) -> None:
    make(workspace, "out/a.o", "out/a.bin", "out/sub/b.o", "out/keep/c")
    selection = select_files(workspace, ["out/"], exclude=["out/**/*.o", "out/keep/**"])
    assert selection.files == ["out/a.bin"]


def test_missing_paths_are_warnings(workspace: Path) -> None:
    make(workspace, "here")
    selection = select_files(workspace, ["here", "missing", "nothing/*.txt"])
    assert selection.files == ["here"]
    assert selection.warnings == ["missing: no matching files", "nothing/*.txt: no matching files"]


def test_paths_escaping_the_workspace_are_refused(workspace: Path, tmp_path: Path) -> None:
    make(tmp_path, "secret/key")
    make(workspace, "ok")
    selection = select_files(workspace, ["../secret/key", "/etc/passwd", "a/../../secret", "ok"])
    assert selection.files == ["ok"]
    assert len(selection.warnings) == 3
    assert all("not in the project directory" in w for w in selection.warnings)


def test_symlinked_folders_leading_outside_are_refused(workspace: Path, tmp_path: Path) -> None:
    make(tmp_path, "outside/secret")
    os.symlink(tmp_path / "outside", workspace / "link")
    selection = select_files(workspace, ["link/secret", "link/*"])
    assert selection.files == []
    assert any("not in the project directory" in w for w in selection.warnings)


def test_a_symlink_itself_is_selected_not_followed(workspace: Path, tmp_path: Path) -> None:
    make(tmp_path, "outside/secret")
    os.symlink(tmp_path / "outside", workspace / "link")
    assert select_files(workspace, ["link"]).files == ["link"]


def test_absolute_paths_inside_the_workspace(workspace: Path) -> None:
    make(workspace, "out/x")
    assert select_files(workspace, [f"{workspace}/out"]).files == ["out/x"]
    assert relative_pattern(f"{workspace}/out/", workspace) == "out"
    assert relative_pattern("./out/../x", workspace) == "x"
    assert relative_pattern("..", workspace) is None


def test_untracked_files_are_added(workspace: Path) -> None:
    make(workspace, "new.txt", "out/x")
    selection = select_files(workspace, ["out"], untracked=["new.txt"])
    assert selection.files == ["new.txt", "out/x"]
