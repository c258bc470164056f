from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from ferrous.agent.file_selection import select_files
from ferrous.archive import (
    MEDIA_TYPE,
    SUFFIX,
    ArchiveEntry,
    HashingReader,
    PackedArchive,
    entries,
    extract_file,
    pack,
    unpack,
)
from ferrous.archive import packing as packing_module
from ferrous.domain.errors import InvalidValue, NotFound
from tests.unit.archive.conftest import (
    archive,
    file,
    folder,
    hardlink,
    symlink,
    tar_bytes,
    zstd,
)

MTIME = 1_700_000_000


def make(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    make(
        root,
        {
            "README": b"read me\n",
            "out/bin/tool": b"#!/bin/sh\necho hi\n",
            "out/lib/deep/er/lib.so": os.urandom(3000),
            "out/empty.txt": b"",
            "dir with space/ünïcödé ✓.txt": "ünïcödé".encode(),
        },
    )
    (root / "out/bin/tool").chmod(0o755)
    (root / "out/none").mkdir()
    (root / "out/link").symlink_to("lib/deep/er/lib.so")
    return root


def read_back(path: Path) -> list[ArchiveEntry]:
    with path.open("rb") as source:
        return list(entries(source))


def unpack_file(path: Path, destination: Path) -> int:
    with path.open("rb") as source:
        return unpack(source, destination)


def test_constants() -> None:
    assert (MEDIA_TYPE, SUFFIX) == ("application/zstd", ".tar.zst")


def test_a_round_trip_keeps_files_folders_links_and_modes(workspace: Path, tmp_path: Path) -> None:
    files = [*select_files(workspace, ["**"]).files, "out/none"]
    packed = pack(workspace, files, tmp_path / "a.tar.zst")
    assert packed.files == 6
    target = tmp_path / "unpacked"
    assert unpack_file(packed.path, target) == 6

    for rel in ("README", "out/bin/tool", "out/lib/deep/er/lib.so", "dir with space/ünïcödé ✓.txt"):
        assert (target / rel).read_bytes() == (workspace / rel).read_bytes()
        assert (target / rel).stat().st_mtime == MTIME
    assert (target / "out/empty.txt").read_bytes() == b""
    assert (target / "out/none").is_dir()
    assert os.readlink(target / "out/link") == "lib/deep/er/lib.so"
    assert stat.S_IMODE((target / "out/bin/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "README").stat().st_mode) == 0o644


def test_entries_list_members_in_the_order_given(workspace: Path, tmp_path: Path) -> None:
    order = ["out/link", "README", "out/none", "out/empty.txt"]
    packed = pack(workspace, order, tmp_path / "a.tar.zst")
    assert read_back(packed.path) == [
        ArchiveEntry("out/link", 0, "symlink", "lib/deep/er/lib.so"),
        ArchiveEntry("README", 8, "file"),
        ArchiveEntry("out/none", 0, "dir"),
        ArchiveEntry("out/empty.txt", 0, "file"),
    ]


def test_a_folder_is_packed_with_everything_below_it(workspace: Path, tmp_path: Path) -> None:
    packed = pack(workspace, ["out"], tmp_path / "a.tar.zst")
    assert [entry.path for entry in read_back(packed.path)] == [
        "out",
        "out/bin",
        "out/bin/tool",
        "out/empty.txt",
        "out/lib",
        "out/lib/deep",
        "out/lib/deep/er",
        "out/lib/deep/er/lib.so",
        "out/link",
        "out/none",
    ]
    assert packed.files == 4


def test_size_and_sha256_are_those_of_the_file(workspace: Path, tmp_path: Path) -> None:
    packed = pack(workspace, ["README", "out/bin/tool"], tmp_path / "a.tar.zst")
    data = packed.path.read_bytes()
    assert packed == PackedArchive(
        path=tmp_path / "a.tar.zst",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        files=2,
    )
    reader = HashingReader(io.BytesIO(data))
    assert [entry.path for entry in entries(reader)] == ["README", "out/bin/tool"]
    assert (reader.size, reader.sha256) == (packed.size, packed.sha256)


def test_packing_is_reproducible_and_leaks_no_owner(workspace: Path, tmp_path: Path) -> None:
    files = select_files(workspace, ["**"]).files
    first = pack(workspace, files, tmp_path / "1.tar.zst")
    second = pack(workspace, files, tmp_path / "2.tar.zst")
    assert first.sha256 == second.sha256
    data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(first.path.read_bytes())).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert all(m.mtime == MTIME for m in members if m.isreg())
    assert all(m.path == m.name for m in members)  # POSIX tar, names as given


def test_an_empty_file_list_gives_an_empty_archive(tmp_path: Path) -> None:
    packed = pack(tmp_path, [], tmp_path / "a.tar.zst")
    assert packed.files == 0
    assert read_back(packed.path) == []
    assert unpack_file(packed.path, tmp_path / "out") == 0
    assert list((tmp_path / "out").iterdir()) == []


def test_vanished_files_are_skipped(workspace: Path, tmp_path: Path) -> None:
    packed = pack(workspace, ["README", "gone", "out/gone/too"], tmp_path / "a.tar.zst")
    assert [entry.path for entry in read_back(packed.path)] == ["README"]


def test_a_failed_pack_leaves_no_file(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, rel: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(packing_module._Packer, "add", broken)
    with pytest.raises(OSError, match="disk on fire"):
        pack(workspace, ["README"], tmp_path / "a.tar.zst")
    assert not (tmp_path / "a.tar.zst").exists()


def test_the_archive_replaces_what_is_in_the_way(workspace: Path, tmp_path: Path) -> None:
    packed = pack(workspace, ["README", "out/bin/tool", "out/link", "out/none"], tmp_path / "a.zst")
    target = tmp_path / "checkout"
    make(target, {"README": b"old", "out/none": b"a file where a folder comes", "keep": b"k"})
    (target / "out/bin").write_bytes(b"a file where a parent folder comes")
    (target / "out/link").mkdir()  # a folder where a symlink comes
    (target / "out/link/inner").write_bytes(b"")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"untouched")
    (target / "elsewhere").symlink_to(outside)

    assert unpack_file(packed.path, target) == 3
    assert (target / "README").read_bytes() == b"read me\n"
    assert (target / "out/bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.readlink(target / "out/link") == "lib/deep/er/lib.so"
    assert (target / "out/none").is_dir()
    assert (target / "keep").read_bytes() == b"k"

    # a symlink at a member's own path is replaced, never written through
    again = archive(file("elsewhere", b"new"))
    assert unpack(io.BytesIO(again), target) == 1
    assert not (target / "elsewhere").is_symlink()
    assert (target / "elsewhere").read_bytes() == b"new"
    assert outside.read_bytes() == b"untouched"


def test_hand_made_archives_with_dot_names_and_hard_links(tmp_path: Path) -> None:
    data = archive(
        folder("./"),
        folder("./a/"),
        file("./a/f", b"data", mode=0o6775),  # setuid/setgid and group-write are dropped
        symlink("./a/s", "f"),
        hardlink("./h", "./a/f"),
    )
    assert list(entries(io.BytesIO(data))) == [
        ArchiveEntry("a", 0, "dir"),
        ArchiveEntry("a/f", 4, "file"),
        ArchiveEntry("a/s", 0, "symlink", "f"),
        ArchiveEntry("h", 0, "hardlink", "a/f"),
    ]
    assert unpack(io.BytesIO(data), tmp_path) == 3
    assert (tmp_path / "h").stat().st_ino == (tmp_path / "a/f").stat().st_ino
    assert stat.S_IMODE((tmp_path / "a/f").stat().st_mode) == 0o755


def test_frames_with_and_without_content_size_several_frames_and_skippable_ones(
    tmp_path: Path,
) -> None:
    raw = tar_bytes(file("a", b"1" * 5000), file("b", os.urandom(5000)))
    streamed = zstd(raw)
    assert zstandard.get_frame_parameters(streamed).content_size == zstandard.CONTENTSIZE_UNKNOWN
    sized = zstandard.ZstdCompressor().compress(raw)
    split = zstandard.ZstdCompressor().compress(raw[:3000]) + zstd(raw[3000:])
    skippable = (0x184D2A5F).to_bytes(4, "little") + (2).to_bytes(4, "little") + b"hi"
    for data in (streamed, sized, split, skippable + sized + skippable):
        assert [entry.path for entry in entries(io.BytesIO(data))] == ["a", "b"]


def test_extract_file(workspace: Path, tmp_path: Path) -> None:
    files = ["README", "out/link", "out/none", "out/empty.txt", "out/lib/deep/er/lib.so"]
    packed = pack(workspace, files, tmp_path / "a.tar.zst")

    def extract(path: str) -> bytes:
        sink = io.BytesIO()
        with packed.path.open("rb") as source:
            assert extract_file(source, path, sink) == len(sink.getvalue())
        return sink.getvalue()

    assert extract("README") == b"read me\n"
    assert (
        extract("./out/lib/deep/er/lib.so") == (workspace / "out/lib/deep/er/lib.so").read_bytes()
    )
    assert extract("out/empty.txt") == b""
    with pytest.raises(InvalidValue, match="out/link: is a symlink"):
        extract("out/link")
    with pytest.raises(InvalidValue, match="is a directory"):
        extract("out/none")
    with pytest.raises(NotFound, match="nothing: not in the archive"):
        extract("nothing")
    with pytest.raises(NotFound):
        extract("./")
