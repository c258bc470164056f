"""Identifiers: time-ordered UUIDs, so ids sort by creation and index well.

An aggregate gets its id when it is created, before it is stored, so that the events it
records can name it; time order keeps B-tree inserts at the right edge and lets cursor
pagination use the id alone.
"""

from __future__ import annotations

import os
import time
from typing import NewType
from uuid import UUID

ProjectId = NewType("ProjectId", str)
PipelineId = NewType("PipelineId", str)
BuildId = NewType("BuildId", str)
JobId = NewType("JobId", str)
AgentId = NewType("AgentId", str)
UserId = NewType("UserId", str)


def new_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(UUID(int=value))
