"""What only the folder store does: files under the root, unfinished files out of sight
until they are old enough to discard, folders pruned as objects go."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferrous.domain.errors import StorageError
from ferrous.infrastructure.storage.hashing import TEMP_PREFIX
from ferrous.infrastructure.storage.local import XATTR, LocalObjectStore
from tests.integration.storage.test_object_store_contract import chunks_of, sha

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)


async def test_objects_are_files_under_the_root(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    stored = await store.put("artifacts/1/2/archive.tar.zst", chunks_of(b"bytes"))
    path = tmp_path / "objects" / "artifacts" / "1" / "2" / "archive.tar.zst"
    assert path.read_bytes() == b"bytes"
    try:
        assert os.getxattr(path, XATTR).decode() == stored.sha256 == sha(b"bytes")
    except OSError:
        pytest.skip("no extended attributes on this file system")


async def test_unfinished_files_are_not_keys(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("a/b", chunks_of(b"x"))
    (tmp_path / "a" / ".tmp-0123").write_bytes(b"left by a crash")
    assert [key async for key in store.keys("")] == ["a/b"]
    assert await store.stat("a") is None  # a folder is not an object


async def test_deleting_the_last_object_of_a_folder_removes_the_folder(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    await store.put("logs/p/b/j1", chunks_of(b"1"))
    await store.put("logs/p/c/j2", chunks_of(b"2"))
    await store.delete("logs/p/b/j1")
    assert sorted(p.name for p in (tmp_path / "objects" / "logs" / "p").iterdir()) == ["c"]
    await store.delete("logs/p/c/j2")
    assert list((tmp_path / "objects").iterdir()) == []


async def test_a_key_under_an_object_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("a", chunks_of(b"file"))
    with pytest.raises(StorageError):
        await store.put("a/b", chunks_of(b"x"))
    assert [key async for key in store.keys("")] == ["a"]


async def test_temporary_files_go_by_their_last_write(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    await store.put("logs/p/b/j-1.log.zst", chunks_of(b"an object"))
    now = datetime.now(UTC)
    old = now - 2 * DAY
    (root / "x" / "y").mkdir(parents=True)
    files = {
        "old": root / "logs" / "p" / "b" / f"{TEMP_PREFIX}old",
        "alone": root / "x" / "y" / f"{TEMP_PREFIX}alone",  # its folders go with it
        "at the root": root / f"{TEMP_PREFIX}root",
        "young": root / "logs" / "p" / f"{TEMP_PREFIX}young",
    }
    for path in files.values():
        path.write_bytes(b"left by a kill -9")
    for name in ("old", "alone", "at the root"):
        os.utime(files[name], (old.timestamp(), old.timestamp()))
    os.utime(root / "logs" / "p" / "b" / "j-1.log.zst", (old.timestamp(), old.timestamp()))
    assert await store.discard_abandoned("", now - DAY) == 3
    assert [path.exists() for path in files.values()] == [False, False, False, True]
    assert not (root / "x").exists()
    assert [key async for key in store.keys("")] == ["logs/p/b/j-1.log.zst"]  # not temporary
    assert await store.discard_abandoned("", now - DAY) == 0


async def test_discarding_in_a_missing_folder_finds_nothing(tmp_path: Path) -> None:
    assert await LocalObjectStore(tmp_path / "never").discard_abandoned("", datetime.now(UTC)) == 0
