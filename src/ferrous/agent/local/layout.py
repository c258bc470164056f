"""Where a local run keeps its things, and the folder-safe name of each job.

Runs live in ``.ferrous/`` inside the checkout, next to the code they ran, so that logs and
artifacts are easy to find (``.ferrous/runs/<run-id>/``) and caches are shared by every run
of the checkout (``.ferrous/cache/``, one ``.tar.zst`` per key). The folder ignores itself
with a ``.gitignore`` of ``*``, as virtual environments do: git never sees it, the project's
own ``.gitignore`` is never edited, and the next run's file list leaves it out.

    runs/<run-id>/builds/<job>/    the job's workspace (CI_PROJECT_DIR), removed after it ends
    runs/<run-id>/scratch/<job>/   the scripts the executor runs, outside the workspace
    runs/<run-id>/logs/<job>.log   the job's raw log
    runs/<run-id>/artifacts/<job>.tar.zst  the job's artifacts (``tar --zstd -xf`` opens it)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ferrous.pipeline_config.context import ref_slug

STATE_DIR = ".ferrous"


def state_dir(checkout: Path) -> Path:
    """``<checkout>/.ferrous``, created with a ``.gitignore`` that hides it from git."""
    folder = checkout / STATE_DIR
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by ferrous run\n*\n", encoding="utf-8")
    return folder


class RunLayout(NamedTuple):
    root: Path

    @classmethod
    def create(cls, runs_dir: Path) -> RunLayout:
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        root = runs_dir / run_id
        for sub in ("builds", "scratch", "logs", "artifacts"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def log_file(self, key: str) -> Path:
        return self.logs / f"{key}.log"


def job_keys(names: Iterable[str]) -> dict[str, str]:
    """A unique, readable folder name per job (``test: [3.11]`` -> ``test-3-11``)."""
    keys: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = ref_slug(name)[:60] or "job"
        key, n = base, 1
        while key in taken:
            n += 1
            key = f"{base}-{n}"
        taken.add(key)
        keys[name] = key
    return keys
