"""Whatever cannot be read whole is CorruptArchive, with a message a person can act on."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ferrous.archive import entries, extract_file, pack, unpack
from ferrous.domain.errors import CorruptArchive
from tests.unit.archive.conftest import archive, file, tar_bytes, zstd

Reader = Callable[[bytes, Path], object]


def by_unpacking(data: bytes, destination: Path) -> object:
    return unpack(io.BytesIO(data), destination)


def by_listing(data: bytes, destination: Path) -> object:
    return list(entries(io.BytesIO(data)))


def by_extracting(data: bytes, destination: Path) -> object:
    return extract_file(io.BytesIO(data), "not/there", io.BytesIO())


READERS = [by_unpacking, by_listing, by_extracting]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("good")
    (root / "random").write_bytes(os.urandom(400_000))
    (root / "text").write_bytes(b"build output\n" * 100_000)
    (root / "small").write_bytes(b"s")
    return pack(root, ["random", "text", "small"], root / "a.tar.zst").path.read_bytes()


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the archive is empty"),
        (os.urandom(5000), "not zstd-compressed"),
        (tar_bytes(file("a", b"plain tar")), "not zstd-compressed"),
        (zstd(os.urandom(5000)), "not a readable tar"),
        (zstd(b""), "not a readable tar: empty file"),
        (archive(file("a")) + b"trailing junk", "unreadable data after its zstd frames"),
    ],
    ids=["empty", "random", "plain-tar", "zstd-not-tar", "zstd-of-nothing", "trailing-junk"],
)
def test_unreadable_input(data: bytes, message: str, reader: Reader, tmp_path: Path) -> None:
    with pytest.raises(CorruptArchive, match=message):
        reader(data, tmp_path)


@pytest.mark.parametrize("reader", [by_unpacking, by_listing])
@pytest.mark.parametrize("keep", [1, 4, 9, 5000, 0.5, -200, -4, -1])
def test_a_truncated_archive(keep: float, reader: Reader, good: bytes, tmp_path: Path) -> None:
    cut = good[: int(len(good) * keep) if isinstance(keep, float) else keep]
    with pytest.raises(CorruptArchive, match="cut short"):
        reader(cut, tmp_path)


@pytest.mark.parametrize("reader", [by_unpacking, by_listing])
@pytest.mark.parametrize("where", [0.01, 0.3, 0.7, 0.99])
def test_damaged_bytes(where: float, reader: Reader, good: bytes, tmp_path: Path) -> None:
    damaged = bytearray(good)
    damaged[int(len(good) * where)] ^= 0x55
    with pytest.raises(CorruptArchive):
        reader(bytes(damaged), tmp_path)


def test_a_tar_cut_inside_a_member_is_corrupt_even_in_a_whole_frame(tmp_path: Path) -> None:
    raw = tar_bytes(file("a", os.urandom(3000)))
    with pytest.raises(CorruptArchive, match="not a readable tar: unexpected end of data"):
        unpack(io.BytesIO(zstd(raw[:1500])), tmp_path)


def test_a_huge_extended_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 1 << 32
    data = zstd(header.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 10240)
    with pytest.raises(CorruptArchive, match="extended header of 4294967296 bytes"):
        list(entries(io.BytesIO(data)))
