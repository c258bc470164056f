"""What an agent tells the server about its machine when it registers."""

from __future__ import annotations

import os
import platform
from typing import Any

from ferrous import __version__


def memory_bytes() -> int | None:
    """Physical memory of the machine, where the OS says (Linux, macOS); else None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def platform_info(*, embedded: bool = False) -> dict[str, Any]:
    """``{"os": "linux", "arch": "x86_64", "cpus": 8, ...}``, as the registration sends it."""
    info: dict[str, Any] = {
        "os": platform.system().lower() or "unknown",
        "arch": platform.machine() or "unknown",
        "cpus": os.cpu_count() or 1,
        "memory": memory_bytes(),
        "python": platform.python_version(),
        "version": __version__,
    }
    if embedded:
        info["embedded"] = True
    return info
