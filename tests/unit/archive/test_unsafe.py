"""Zip-slip and friends: every hostile member is refused, naming itself and why, and nothing
lands outside the destination (for ``unpack``) or passes validation (for ``entries``)."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ferrous.archive import entries, extract_file, unpack
from ferrous.domain.errors import UnsafeArchive
from tests.unit.archive.conftest import Member, archive, file, folder, hardlink, symlink

Reader = Callable[[bytes, Path], object]


def by_unpacking(data: bytes, destination: Path) -> object:
    return unpack(io.BytesIO(data), destination)


def by_listing(data: bytes, destination: Path) -> object:
    return list(entries(io.BytesIO(data)))


def by_extracting(data: bytes, destination: Path) -> object:
    return extract_file(io.BytesIO(data), "never/there", io.BytesIO())


def snapshot(root: Path, skip: Path) -> set[str]:
    """Every path under ``root`` except ``skip`` and what is below it."""
    found = set()
    for folder_, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder_, d) != skip]
        found.update(os.path.join(folder_, name) for name in dirs + names)
    return found


OUTSIDE = "OUTSIDE"  # stands for an absolute path beside the destination

HOSTILE: dict[str, tuple[list[Member], str]] = {
    "parent": ([file("../x")], r"^\.\./x: leaves the destination through \.\.$"),
    "parent inside a name": (
        [file("a/../../x")],
        r"^a/\.\./\.\./x: leaves the destination through \.\.$",
    ),
    "parent that stays inside": ([file("a/../x")], r"^a/\.\./x: has a \.\. in its path$"),
    "absolute": ([file("/etc/x")], r"^/etc/x: absolute path$"),
    "absolute beside": ([file(f"{OUTSIDE}/x")], r": absolute path$"),
    "symlink to /etc then through it": (
        [symlink("link", "/etc"), file("link/passwd")],
        r"^link: symlink to /etc points outside$",
    ),
    "symlink to /etc/passwd": (
        [symlink("passwd", "/etc/passwd")],
        r"^passwd: symlink to /etc/passwd points outside$",
    ),
    "symlink climbing out": (
        [symlink("link", "../../outside")],
        r"^link: symlink to \.\./\.\./outside points outside$",
    ),
    "symlink climbing out of its folder": (
        [symlink("a/b/link", "../../../x")],
        r"^a/b/link: symlink to \.\./\.\./\.\./x points outside$",
    ),
    "symlink through another symlink": (
        [symlink("s", "."), symlink("t", "s/../..")],
        r"^t: symlink to s/\.\./\.\. has a \.\. after a name",
    ),
    "write through an inside symlink": (
        [folder("sub"), symlink("link", "sub"), file("link/passwd")],
        r"^link/passwd: would write through a symlink \(link\)$",
    ),
    "write deep through an inside symlink": (
        [symlink("link", "."), file("link/a/b")],
        r"^link/a/b: would write through a symlink \(link\)$",
    ),
    "hard link out": (
        [hardlink("h", "../outside")],
        r"^h: hard link to \.\./outside points outside$",
    ),
    "hard link to an absolute path": (
        [hardlink("h", "/etc/passwd")],
        r"^h: hard link to /etc/passwd points outside$",
    ),
    "fifo": ([Member("pipe", tarfile.FIFOTYPE)], r"^pipe: device or fifo$"),
    "char device": ([Member("null", tarfile.CHRTYPE)], r"^null: device or fifo$"),
    "block device": ([Member("sda", tarfile.BLKTYPE)], r"^sda: device or fifo$"),
    "unsupported type": ([Member("odd", b"Z")], r"^odd: unsupported entry type 'Z'$"),
    "empty symlink": ([symlink("s", "")], r"^s: symlink with an empty target$"),
}


@pytest.mark.parametrize("reader", [by_unpacking, by_listing, by_extracting])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_members_are_refused(case: str, reader: Reader, tmp_path: Path) -> None:
    box = tmp_path / "box"
    destination = box / "dest"
    destination.mkdir(parents=True)
    members, message = HOSTILE[case]
    members = [
        Member(m.name.replace(OUTSIDE, str(tmp_path)), m.type, m.data, m.link, m.mode)
        for m in members
    ]
    before = snapshot(tmp_path, destination)

    with pytest.raises(UnsafeArchive, match=message):
        reader(archive(file("fine.txt", b"ok"), *members), destination)

    assert snapshot(tmp_path, destination) == before
    assert not os.path.lexists("/etc/x")


def test_a_symlink_already_in_the_destination_is_not_written_through(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    destination.mkdir()
    (destination / "out").symlink_to(outside)
    leading_out = r"^out/x: would write through a symlink \(out\) leading outside$"
    with pytest.raises(UnsafeArchive, match=leading_out):
        unpack(io.BytesIO(archive(file("out/x"))), destination)
    assert list(outside.iterdir()) == []


def test_a_new_link_through_an_old_link_pointing_outside_is_refused(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "up").symlink_to(tmp_path)
    with pytest.raises(UnsafeArchive, match=r"^x: symlink to up/etc points outside$"):
        unpack(io.BytesIO(archive(symlink("x", "up/etc"))), destination)
    with pytest.raises(UnsafeArchive, match=r"^h: hard link to up is not a file inside$"):
        unpack(io.BytesIO(archive(hardlink("h", "up"))), destination)
    assert sorted(os.listdir(destination)) == ["up"]


def test_hard_links_only_to_files(tmp_path: Path) -> None:
    data = archive(symlink("s", "a"), file("a"), hardlink("h", "s"))
    with pytest.raises(UnsafeArchive, match=r"^h: hard link to s is not a file inside$"):
        unpack(io.BytesIO(data), tmp_path)
    with pytest.raises(UnsafeArchive, match=r"^h: hard link to nothing is not a file inside$"):
        unpack(io.BytesIO(archive(hardlink("h", "nothing"))), tmp_path)


def test_links_that_stay_inside_are_fine(tmp_path: Path) -> None:
    data = archive(
        folder("a/b"),
        symlink("a/b/up", "../../top"),
        symlink("a/sibling", "b/./up"),
        symlink("self", "."),
        file("top", b"t"),
        folder("link"),  # a folder replaces the link the archive made before
    )
    assert unpack(io.BytesIO(archive(symlink("link", "a"), file("x"))), tmp_path) == 2
    assert unpack(io.BytesIO(data), tmp_path) == 4
    assert (tmp_path / "a/sibling").read_bytes() == b"t"
    assert (tmp_path / "link").is_dir()
    assert not (tmp_path / "link").is_symlink()
    replaced = archive(symlink("l", "a"), folder("l"), file("l/x"))
    assert [entry.path for entry in entries(io.BytesIO(replaced))] == ["l", "l", "l/x"]
