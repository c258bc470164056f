"""Symlinks that lead outside: left out of artifacts (with a warning), kept in caches, and
never written through, whoever made them; symlinks that stay inside may be written through."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from ferrous.agent.file_selection import select_files
from ferrous.archive import ArchiveEntry, display_path, entries, pack, unpack
from ferrous.domain.errors import UnsafeArchive
from tests.unit.archive.conftest import Member, archive, file, folder, hardlink, symlink


def listing(path: Path, *, allow_outside_links: bool = False) -> list[ArchiveEntry]:
    with path.open("rb") as source:
        return list(entries(source, allow_outside_links=allow_outside_links))


def unpack_file(path: Path, destination: Path, *, allow_outside_links: bool = False) -> int:
    with path.open("rb") as source:
        return unpack(source, destination, allow_outside_links=allow_outside_links)


def tree(root: Path) -> dict[str, str]:
    """Every path below ``root``: a file's text, a link's target, "/" for a folder."""
    found = {}
    for folder_, dirs, names in os.walk(root):
        for name in dirs + names:
            full = Path(folder_, name)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                found[rel] = "-> " + os.readlink(full)
            elif full.is_dir():
                found[rel] = "/"
            else:
                found[rel] = full.read_text()
    return found


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A workspace with a virtualenv as ``python -m venv`` leaves it: the interpreter is an
    absolute link out of the workspace (here to a stand-in, to stay hermetic)."""
    interpreter = tmp_path / "usr/bin/python3"
    interpreter.parent.mkdir(parents=True)
    interpreter.write_text("#!interpreter")
    root = tmp_path / "ws"
    site = root / ".venv/lib/python3.11/site-packages/pkg"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("VALUE = 1\n")
    (root / ".venv/pyvenv.cfg").write_text(f"home = {interpreter.parent}\n")
    (root / ".venv/bin").mkdir()
    (root / ".venv/bin/python").symlink_to(interpreter)
    (root / ".venv/bin/python3").symlink_to("python")
    (root / ".venv/lib64").symlink_to("lib")
    return root


def test_a_virtualenv_cache_round_trips_with_its_absolute_links(venv: Path, tmp_path: Path) -> None:
    files = select_files(venv, [".venv"]).files
    packed = pack(venv, files, tmp_path / "cache.tar.zst", keep_outside_links=True)
    assert packed.skipped == ()
    assert ArchiveEntry(".venv/bin/python", 0, "symlink", str(tmp_path / "usr/bin/python3")) in (
        listing(packed.path, allow_outside_links=True)
    )

    restored = tmp_path / "restored"
    assert unpack_file(packed.path, restored, allow_outside_links=True) == packed.files == 5
    assert tree(restored) == tree(venv)
    assert (restored / ".venv/bin/python3").read_text() == "#!interpreter"
    assert (restored / ".venv/lib64/python3.11/site-packages/pkg/__init__.py").exists()


def test_the_same_cache_is_refused_as_an_artifact(venv: Path, tmp_path: Path) -> None:
    packed = pack(venv, [".venv"], tmp_path / "cache.tar.zst", keep_outside_links=True)
    outside = rf"^\.venv/bin/python: symlink to {tmp_path}/usr/bin/python3 points outside$"
    with pytest.raises(UnsafeArchive, match=outside):
        listing(packed.path)
    with pytest.raises(UnsafeArchive, match=outside):
        unpack_file(packed.path, tmp_path / "restored")
    assert not (tmp_path / "restored/.venv/bin/python").is_symlink()


def test_pack_leaves_out_links_unpack_would_refuse_and_says_so(venv: Path, tmp_path: Path) -> None:
    dist = venv / "dist"
    dist.mkdir()
    (dist / "x").symlink_to("/etc")
    (dist / "up").symlink_to("../../elsewhere")
    (dist / "odd").symlink_to("sub/../../README")
    (dist / "abs").symlink_to(venv / "README")
    (dist / "fine").symlink_to("../README")
    (venv / "README").write_text("r")

    packed = pack(venv, [".venv", "dist", "README"], tmp_path / "a.tar.zst")
    python = tmp_path / "usr/bin/python3"
    assert packed.skipped == (
        f".venv/bin/python -> {python}: points outside the workspace",
        f"dist/abs -> {venv}/README: absolute link into the workspace"
        " (make it relative to keep it)",
        "dist/odd -> sub/../../README: has a .. after a name (it could lead outside the workspace)",
        "dist/up -> ../../elsewhere: points outside the workspace",
        "dist/x -> /etc: points outside the workspace",
    )
    kept = listing(packed.path)  # the default checks accept what pack wrote
    paths = [entry.path for entry in kept]
    assert ".venv/bin/python3" in paths
    assert "dist/fine" in paths
    assert not {".venv/bin/python", "dist/x", "dist/up", "dist/odd", "dist/abs"} & set(paths)
    assert packed.files == sum(entry.kind != "dir" for entry in kept) == 6
    assert unpack_file(packed.path, tmp_path / "out") == 6
    assert (tmp_path / "out/dist/fine").read_text() == "r"


def test_links_to_anywhere_still_never_carry_a_write_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"

    def refused(data: bytes, message: str) -> None:
        with pytest.raises(UnsafeArchive, match=message):
            unpack(io.BytesIO(data), destination, allow_outside_links=True)
        with pytest.raises(UnsafeArchive, match=message):
            list(entries(io.BytesIO(data), allow_outside_links=True))

    refused(
        archive(symlink("link", str(outside)), file("link/x")),
        r"^link/x: would write through a symlink \(link\)$",
    )
    refused(archive(file("../x")), r"^\.\./x: leaves the destination through \.\.$")
    refused(archive(file(f"{outside}/x")), r": absolute path$")
    refused(archive(hardlink("h", "../x")), r"^h: hard link to \.\./x points outside$")
    refused(archive(Member("pipe", b"6")), r"^pipe: device or fifo$")
    refused(archive(symlink("s", "")), r"^s: symlink with an empty target$")

    # a link left by an earlier cache is not written through by a later archive
    earlier = archive(symlink("a", str(outside)))
    assert unpack(io.BytesIO(earlier), destination, allow_outside_links=True) == 1
    with pytest.raises(UnsafeArchive, match=r"^a/x: would write through a symlink \(a\) leading"):
        unpack(io.BytesIO(archive(file("a/x"))), destination, allow_outside_links=True)
    with pytest.raises(UnsafeArchive, match=r"^h: hard link to a/x is not a file inside$"):
        unpack(io.BytesIO(archive(hardlink("h", "a/x"))), destination, allow_outside_links=True)
    assert list(outside.iterdir()) == []


def checkout(root: Path) -> Path:
    """A checkout whose ``dist`` is a committed link into the (not yet built) build folder."""
    root.mkdir()
    (root / "dist").symlink_to("build/dist")
    return root


def test_writing_through_a_link_that_stays_inside(tmp_path: Path) -> None:
    data = archive(file("dist/x", b"x"), folder("dist/sub"), file("dist/sub/y", b"y"))
    destination = checkout(tmp_path / "dest")  # build/dist does not exist yet: it is made
    assert unpack(io.BytesIO(data), destination) == 2
    assert os.readlink(destination / "dist") == "build/dist"
    assert (destination / "build/dist/x").read_bytes() == b"x"
    assert (destination / "build/dist/sub/y").read_bytes() == b"y"

    assert unpack(io.BytesIO(archive(file("dist/x", b"again"))), destination) == 1
    assert (destination / "build/dist/x").read_bytes() == b"again"

    (destination / "self").symlink_to(".")
    assert unpack(io.BytesIO(archive(file("self/top", b"t"))), destination) == 1
    assert (destination / "top").read_bytes() == b"t"


def test_a_link_to_a_file_on_the_way_is_replaced_by_a_folder(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "README").write_text("r")
    (destination / "docs").symlink_to("README")
    assert unpack(io.BytesIO(archive(file("docs/x"))), destination) == 1
    assert (destination / "docs").is_dir()
    assert not (destination / "docs").is_symlink()
    assert (destination / "README").read_text() == "r"


def test_a_chain_of_links_leading_outside_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = checkout(tmp_path / "dest")
    (destination / "build").symlink_to(outside)
    with pytest.raises(UnsafeArchive, match=r"^dist/x: would write through a symlink \(dist\)"):
        unpack(io.BytesIO(archive(file("dist/x"))), destination)
    assert list(outside.iterdir()) == []


def test_a_link_followed_earlier_is_checked_again_at_each_write(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = checkout(tmp_path / "dest")
    (destination / "build/dist/sub").mkdir(parents=True)
    data = archive(
        file("dist/sub/x"),
        symlink("build", str(outside)),  # replaces the folder dist leads through
        file("dist/sub/y"),
    )
    with pytest.raises(UnsafeArchive, match=r"^dist/sub/y: would write through a symlink"):
        unpack(io.BytesIO(data), destination, allow_outside_links=True)
    assert list(outside.iterdir()) == []


def test_a_folder_replaced_through_a_link_is_checked_again_by_its_real_name(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = checkout(tmp_path / "dest")
    (destination / "build/dist/sub").mkdir(parents=True)
    data = archive(
        file("build/dist/sub/a"),
        symlink("dist/sub", str(outside)),  # lands at build/dist/sub, through dist
        file("build/dist/sub/x"),
    )
    message = r"^build/dist/sub/x: would write through a symlink \(build/dist/sub\) leading"
    with pytest.raises(UnsafeArchive, match=message):
        unpack(io.BytesIO(data), destination, allow_outside_links=True)
    assert os.readlink(destination / "build/dist/sub") == str(outside)
    assert list(outside.iterdir()) == []


def test_display_path_for_names_that_are_not_utf8(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9.txt")
    (root / name).write_text("latin-1 name")
    packed = pack(root, [name], tmp_path / "a.tar.zst")
    [entry] = listing(packed.path)
    assert entry.path == "caf\udce9.txt"
    with pytest.raises(UnicodeEncodeError):
        json.dumps(entry.path, ensure_ascii=False).encode()
    assert display_path(entry.path) == "caf\ufffd.txt"
    assert json.loads(json.dumps(display_path(entry.path))) == "caf\ufffd.txt"
    assert display_path("ünïcödé ✓/a") == "ünïcödé ✓/a"
    assert unpack_file(packed.path, tmp_path / "out") == 1
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9.txt"]
