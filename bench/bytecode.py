"""Run commands as an installed package runs: with compiled bytecode.

This workspace may set ``PYTHONDONTWRITEBYTECODE``, which makes every interpreter start compile
each module from source; an installed package has ``.pyc`` files. Benchmarks of whole commands
cache bytecode in a private folder (``PYTHONPYCACHEPREFIX``; nothing is written into the venv).
"""

from __future__ import annotations

import os
from pathlib import Path


def bytecode_env(pycache: Path | None) -> dict[str, str]:
    """The environment for a measured command; ``None`` measures without any bytecode."""
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    return env
