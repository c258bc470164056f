"""Copying many files fast: workspaces, artifacts and caches are all lists of files to copy.

Hard links would be cheapest but are unsafe: a job that writes into a linked file would change
the checkout and every other job's copy. So files are really copied, with
``os.copy_file_range`` (in-kernel, and a reflink on filesystems that have them), falling back
to ``sendfile`` and plain reads. Mode and times are kept (build tools compare mtimes);
symlinks are copied as symlinks. Big lists are spread over a few threads: copying is system
calls, which release the GIL.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

#: Below this many files a thread pool costs more than it saves.
PARALLEL_THRESHOLD = 256
WORKERS = 4


def _copy_data(src_fd: int, dst_fd: int, size: int) -> None:
    copied = 0
    try:
        while copied < size:
            sent = os.copy_file_range(src_fd, dst_fd, size - copied)
            if sent == 0:
                break
            copied += sent
    except OSError:  # another filesystem, or no kernel support: plain copy from where we are
        os.lseek(src_fd, copied, os.SEEK_SET)
        os.lseek(dst_fd, copied, os.SEEK_SET)
        with os.fdopen(os.dup(src_fd), "rb") as fin, os.fdopen(os.dup(dst_fd), "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path)


def copy_file(src: str, dst: str, *, replace: bool = False) -> None:
    """Copy one file or symlink; with ``replace``, an existing destination is replaced (never
    written through, in case it is a symlink)."""
    info = os.lstat(src)
    if replace:
        _remove(dst)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src), dst)
        return
    if stat.S_ISDIR(info.st_mode):  # a submodule, listed by git as one entry: take it whole
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        return
    src_fd = os.open(src, os.O_RDONLY)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if info.st_size:
                _copy_data(src_fd, dst_fd, info.st_size)
            os.fchmod(dst_fd, stat.S_IMODE(info.st_mode))
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))


def make_parents(dst_root: Path, rel_paths: Sequence[str]) -> None:
    folders = {os.path.dirname(p) for p in rel_paths}
    folders.discard("")
    root = str(dst_root)
    for folder in sorted(folders):
        os.makedirs(os.path.join(root, folder), exist_ok=True)


def copy_files(
    src_root: Path, rel_paths: Sequence[str], dst_root: Path, *, replace: bool = False
) -> list[str]:
    """Copy the listed files from one root to another; return those that vanished meanwhile.

    A file listed but gone (deleted in the checkout but still known to git) is skipped, which
    is what a commit of the working tree would contain. ``replace`` is for copying into a
    folder that may already hold some of the files (unpacking artifacts, restoring caches).
    """
    dst_root.mkdir(parents=True, exist_ok=True)
    if replace:
        _clear_way(dst_root, rel_paths)
    make_parents(dst_root, rel_paths)
    src, dst = str(src_root), str(dst_root)
    missing: list[str] = []
    errors: list[OSError] = []

    def copy_slice(paths: Sequence[str]) -> None:
        for rel in paths:
            try:
                copy_file(os.path.join(src, rel), os.path.join(dst, rel), replace=replace)
            except FileNotFoundError:
                missing.append(rel)
            except OSError as exc:
                errors.append(exc)
                return

    if len(rel_paths) < PARALLEL_THRESHOLD:
        copy_slice(rel_paths)
    else:
        threads = [
            threading.Thread(target=copy_slice, args=(rel_paths[i::WORKERS],), daemon=True)
            for i in range(WORKERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return sorted(missing)


def _clear_way(dst_root: Path, rel_paths: Sequence[str]) -> None:
    """Remove anything in the destination that is not a real folder where one is needed.

    A symlink (or file) standing where an incoming file's folder should be would make the copy
    land outside the destination, or fail.
    """
    root = str(dst_root)
    folders = {os.path.dirname(p) for p in rel_paths}
    folders.discard("")
    needed: set[str] = set()
    for folder in folders:
        parts = folder.split("/")
        needed.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    for folder in sorted(needed):
        full = os.path.join(root, folder)
        if os.path.islink(full) or (os.path.lexists(full) and not os.path.isdir(full)):
            _remove(full)


def list_tree(root: Path, *, skip: Sequence[Path] = ()) -> list[str]:
    """Every file and symlink below a folder (relative "/" paths), except the ``skip`` folders."""
    skipped = {os.path.realpath(p) for p in skip}
    out: list[str] = []
    prefix_len = len(str(root)) + 1
    for folder, dirs, files in os.walk(root):
        kept = []
        for name in dirs:
            full = os.path.join(folder, name)
            if os.path.islink(full):
                files.append(name)
            elif os.path.realpath(full) not in skipped:
                kept.append(name)
        dirs[:] = kept
        base = folder[prefix_len:].replace(os.sep, "/")
        out.extend(f"{base}/{name}" if base else name for name in files)
    return out
