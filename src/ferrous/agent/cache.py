"""Caches: restored before a job's script by key, saved after it, as GitLab's ``cache:`` says.

- The key is ``cache:key`` with variables expanded; with ``key:files`` it is a hash of those
  files' contents (``prefix-hash`` with ``key:prefix``, ``default`` when none exists), so the
  cache changes exactly when a lock file does, uncommitted edits included.
- ``policy``: ``pull`` only restores, ``push`` only saves, ``pull-push`` (default) both.
- ``when`` (on_success, on_failure, always) decides whether to save.
- ``fallback_keys`` (then the ``CACHE_FALLBACK_KEY`` variable) are tried in order when the
  key has no cache yet.

A missing cache, or one that cannot be restored or saved, is a note in the job log, never a
job failure. Where caches are kept is a ``CacheTransfer``: the server on an agent
(``remote.transfer.ServerFiles``), a folder of archives shared by every run of a checkout for
``ferrous run`` (``LocalCacheStore``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from ferrous.agent.archive_store import ArchiveFolder
from ferrous.agent.artifacts import matches_when
from ferrous.agent.file_selection import select_files
from ferrous.domain.errors import FerrousError
from ferrous.pipeline_config.plan import Cache
from ferrous.pipeline_config.variables import expand

Note = Callable[[str], None]

#: Longer file names are shortened (with a hash to keep them distinct): most filesystems
#: stop at 255 bytes, and a key may be 255 characters before it is quoted.
MAX_NAME = 160


class CacheTransfer(Protocol):
    """Where caches are kept, by key. Called from the job's thread, blocking; failures raise
    ``OSError`` or a ``FerrousError`` (a warning in the job log, never a job failure)."""

    def restore(self, keys: Sequence[str], workspace: Path) -> str | None:
        """Unpack the first of ``keys`` that has a cache into ``workspace``; which one, or
        None when none has."""
        ...

    def save(self, key: str, workspace: Path, files: Sequence[str]) -> None:
        """Store ``files`` (relative to ``workspace``) under ``key``, replacing the old cache."""
        ...


def files_hash(workspace: Path, patterns: Sequence[str]) -> str | None:
    """A stable hash of the named files' paths and contents; None when none exists."""
    import hashlib  # noqa: PLC0415  # only `key:files` needs it; start-up time matters

    selection = select_files(workspace, patterns)
    if not selection.files:
        return None
    digest = hashlib.sha256()
    for rel in selection.files:
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        path = workspace / rel
        if path.is_symlink():
            digest.update(b"link:" + os.readlink(path).encode("utf-8", "surrogateescape"))
        else:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        digest.update(b"\0")
    return digest.hexdigest()[:40]


def cache_key(cache: Cache, workspace: Path, variables: Mapping[str, str]) -> str:
    """The key a job's cache is stored under, computed in the job's workspace."""
    if cache.key_files:
        files = [expand(f, variables) for f in cache.key_files]
        digest = files_hash(workspace, files) or "default"
        prefix = expand(cache.key_prefix, variables) if cache.key_prefix else ""
        return f"{prefix}-{digest}" if prefix else digest
    return expand(cache.key, variables) or "default"


def folder_name(key: str) -> str:
    """A key as one safe file name: no ``/``, never starting with ``.``, distinct per key
    (reversible up to ``MAX_NAME`` bytes, a prefix and a hash of the key beyond)."""
    import hashlib  # noqa: PLC0415  # rarely needed; start-up time matters

    name = quote(key, safe=" -_+=,@")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        name = f"{name[: MAX_NAME - 40]}~{digest}"
    return name


class LocalCacheStore:
    """Caches as archives under one root, shared by every run of a checkout."""

    def __init__(self, root: Path) -> None:
        self._folder = ArchiveFolder(root, outside_links=True)

    def has(self, key: str) -> bool:
        return self._folder.has(folder_name(key))

    def restore(self, keys: Sequence[str], workspace: Path) -> str | None:
        for key in keys:
            if self._folder.unpack(folder_name(key), workspace) is not None:
                return key
        return None

    def save(self, key: str, workspace: Path, files: Sequence[str]) -> None:
        self._folder.save(folder_name(key), workspace, files)


def restore_caches(
    caches: Sequence[Cache],
    store: CacheTransfer,
    workspace: Path,
    variables: Mapping[str, str],
    note: Note,
) -> None:
    """Restore every cache whose policy pulls."""
    for cache in caches:
        try:
            key = cache_key(cache, workspace, variables)
        except OSError as exc:
            note(f"WARNING: cannot compute the cache key: {exc}; continuing without cache")
            continue
        if cache.policy == "push":
            note(f"Not downloading cache {key} due to policy")
            continue
        keys = [key, *(expand(k, variables) for k in cache.fallback_keys)]
        fallback = variables.get("CACHE_FALLBACK_KEY")
        if fallback:
            keys.append(fallback)
        note(f"Checking cache for {key}...")
        try:
            found = store.restore(list(dict.fromkeys(keys)), workspace)
        except (OSError, FerrousError) as exc:
            note(f"WARNING: Failed to extract cache {key}: {exc}")
            continue
        if found is None:
            note(f"No cache found for {key}: continuing without it")
        elif found == key:
            note(f"Successfully extracted cache {key}")
        else:
            note(f"Successfully extracted cache {found} (fallback for {key})")


def save_caches(
    caches: Sequence[Cache],
    store: CacheTransfer,
    workspace: Path,
    variables: Mapping[str, str],
    *,
    succeeded: bool,
    untracked: Callable[[], list[str]],
    note: Note,
) -> None:
    """Save every cache whose policy pushes and whose ``when`` matches the job's result."""
    for cache in caches:
        try:
            key = cache_key(cache, workspace, variables)
        except OSError as exc:
            note(f"WARNING: cannot compute the cache key: {exc}; not saving the cache")
            continue
        if cache.policy == "pull":
            note(f"Not uploading cache {key} due to policy")
            continue
        if not matches_when(cache.when, succeeded):
            note(f"Not saving cache {key}: cache:when is {cache.when}")
            continue
        paths = [expand(p, variables) for p in cache.paths]
        selection = select_files(workspace, paths, untracked=untracked() if cache.untracked else ())
        for warning in selection.warnings:
            note(f"WARNING: {warning}")
        if not selection.files:
            note(f"Not saving cache {key}: no files to cache")
            continue
        note(f"Creating cache {key} ({len(selection.files)} files)...")
        try:
            store.save(key, workspace, selection.files)
        except (OSError, FerrousError) as exc:
            note(f"WARNING: Failed to create cache {key}: {exc}")
            continue
        note(f"Created cache {key}")
