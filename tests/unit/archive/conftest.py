"""Archives built by hand, for what ``pack`` would never write (hostile or broken members),
and a look at the process's memory."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

import zstandard


@dataclass(frozen=True)
class Member:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    link: str = ""
    mode: int = 0o644


def tar_bytes(*members: Member) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.mode = member.mode
            info.linkname = member.link
            if member.type == tarfile.REGTYPE:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def zstd(data: bytes) -> bytes:
    """Compressed as a streaming writer would: no content size in the frame header."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


def archive(*members: Member) -> bytes:
    return zstd(tar_bytes(*members))


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> Member:
    return Member(name, tarfile.REGTYPE, data, mode=mode)


def symlink(name: str, target: str) -> Member:
    return Member(name, tarfile.SYMTYPE, link=target)


def hardlink(name: str, target: str) -> Member:
    return Member(name, tarfile.LNKTYPE, link=target)


def folder(name: str) -> Member:
    return Member(name, tarfile.DIRTYPE, mode=0o755)


def status(key: str) -> int:
    """A line of /proc/self/status, in MiB."""
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    raise LookupError(key)


def reset_peak() -> int:
    """Start a new peak-memory measurement here (Linux: writing 5 to clear_refs resets
    VmHWM); returns the memory in use now."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return status("VmRSS")
