"""Archives of workspace files: tar compressed with zstd, packed and unpacked safely."""

from __future__ import annotations

from .format import (
    BUFFER_SIZE,
    MEDIA_TYPE,
    SUFFIX,
    ArchiveEntry,
    EntryKind,
    HashingReader,
    HashingWriter,
    PackedArchive,
    display_path,
)
from .packing import pack
from .reading import entries, extract_file
from .unpacking import unpack

__all__ = [
    "BUFFER_SIZE",
    "MEDIA_TYPE",
    "SUFFIX",
    "ArchiveEntry",
    "EntryKind",
    "HashingReader",
    "HashingWriter",
    "PackedArchive",
    "display_path",
    "entries",
    "extract_file",
    "pack",
    "unpack",
]
