"""Artifacts: collected from a job's workspace after it ran, unpacked into later jobs' ones.

Which files to collect follows ``artifacts:`` (``paths``, ``exclude``, ``untracked``, variables
expanded in paths as GitLab does); which jobs' artifacts a job receives is the job runner's
decision. The store here keeps each job's files as a plain folder: ``ferrous run`` reads them
straight back. A server agent selects the same files with ``select_artifacts`` and packs them
for upload instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ferrous.agent.file_selection import Selection, select_files
from ferrous.agent.folder_store import FolderStore
from ferrous.pipeline_config.plan import Artifacts
from ferrous.pipeline_config.variables import expand


def select_artifacts(
    spec: Artifacts,
    workspace: Path,
    variables: Mapping[str, str],
    untracked: Callable[[], list[str]],
) -> Selection:
    """The files ``spec`` names in ``workspace``; ``untracked`` is only asked when needed."""
    paths = [expand(p, variables) for p in spec.paths]
    exclude = [expand(p, variables) for p in spec.exclude]
    extra = untracked() if spec.untracked else []
    return select_files(workspace, paths, exclude=exclude, untracked=extra)


def matches_when(when: str, succeeded: bool) -> bool:
    """``artifacts:when`` and ``cache:when``: on_success, on_failure or always."""
    if when == "always":
        return True
    return succeeded if when == "on_success" else not succeeded


class LocalArtifactStore(FolderStore):
    """A run's artifacts, one folder per job (keyed by the job's folder-safe name)."""
