"""Decompression bombs: a few MB of zstd that expand to terabytes stop at the limit, early,
with flat memory."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from ferrous.archive import entries, extract_file, pack, unpack
from ferrous.domain.errors import UnsafeArchive
from tests.unit.archive.conftest import archive, file, reset_peak, status, tar_bytes, zstd

LIMIT = 64 << 20
ZEROS = zstandard.ZstdCompressor(level=3).compress(bytes(16 << 20))  # ~500 bytes
FRAMES = 8192  # 128 GiB of zeros in ~4 MB

Reader = Callable[[io.BytesIO, Path, int], object]


def by_unpacking(source: io.BytesIO, destination: Path, limit: int) -> object:
    return unpack(source, destination, max_unpacked_bytes=limit)


def by_listing(source: io.BytesIO, destination: Path, limit: int) -> object:
    return list(entries(source, max_unpacked_bytes=limit))


def by_extracting(source: io.BytesIO, destination: Path, limit: int) -> object:
    return extract_file(source, "not/there", io.BytesIO(), max_unpacked_bytes=limit)


READERS = [by_unpacking, by_listing, by_extracting]


def huge_member() -> bytes:
    """A member announcing 128 GiB, its zeros following."""
    info = tarfile.TarInfo("bomb")
    info.size = FRAMES * (16 << 20)
    return zstd(info.tobuf(tarfile.PAX_FORMAT)) + ZEROS * FRAMES


def zeros_after_the_end() -> bytes:
    """A small, valid tar, then 128 GiB of zeros (padding, as far as tar is concerned)."""
    return archive(file("a", b"hi")) + ZEROS * FRAMES


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("bomb", [huge_member, zeros_after_the_end])
def test_a_bomb_stops_early_in_little_memory(
    bomb: Callable[[], bytes], reader: Reader, tmp_path: Path
) -> None:
    data = bomb()
    source = io.BytesIO(data)
    before = reset_peak()
    with pytest.raises(UnsafeArchive, match=rf"^archive expands past {LIMIT} bytes$"):
        reader(source, tmp_path, LIMIT)
    growth = status("VmHWM") - before
    assert growth < 50, f"grew by {growth} MB"
    assert source.tell() <= 2 << 20 < len(data)  # the rest was never read
    assert not (tmp_path / "bomb").exists()


@pytest.mark.parametrize("reader", READERS)
def test_the_limit_counts_all_members(reader: Reader, tmp_path: Path) -> None:
    data = archive(*(file(f"f{i}", bytes(4 << 20)) for i in range(3)))
    with pytest.raises(UnsafeArchive, match=r"^archive expands past 10485760 bytes$"):
        reader(io.BytesIO(data), tmp_path, 10 << 20)
    if reader is by_unpacking:  # refused at the third member's header, before its data
        assert sorted(os.listdir(tmp_path)) == ["f0", "f1"]


def test_an_archive_of_exactly_the_limit_passes(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(os.urandom(300_000))
    (tmp_path / "b").write_bytes(b"text\n" * 100_000)
    packed = pack(tmp_path, ["a", "b"], tmp_path / "p.tar.zst")
    data = packed.path.read_bytes()
    size = len(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read())

    assert unpack(io.BytesIO(data), tmp_path / "out", max_unpacked_bytes=size) == 2
    assert len(list(entries(io.BytesIO(data), max_unpacked_bytes=size))) == 2
    sink = io.BytesIO()
    assert extract_file(io.BytesIO(data), "b", sink, max_unpacked_bytes=size) == 500_000
    with pytest.raises(UnsafeArchive, match=f"past {size - 1} bytes"):
        list(entries(io.BytesIO(data), max_unpacked_bytes=size - 1))


def test_without_a_limit_padding_is_read_to_the_end(tmp_path: Path) -> None:
    data = zstd(tar_bytes(file("a", b"hi")) + bytes(3 << 20))
    assert [entry.path for entry in entries(io.BytesIO(data))] == ["a"]
