"""Artifacts: collected from a job's workspace after it ran, unpacked into later jobs' ones.

Which files to collect follows ``artifacts:`` (``paths``, ``exclude``, ``untracked``, variables
expanded in paths as GitLab does); which jobs' artifacts a job receives is the job runner's
decision. Where they go is an ``ArtifactTransfer``: the server on an agent
(``remote.transfer.ServerFiles``), a folder of archives for ``ferrous run``
(``LocalArtifactStore``). Both pack and unpack with ``ferrous.archive``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from ferrous.agent.archive_store import ArchiveFolder
from ferrous.agent.file_selection import Selection, select_files
from ferrous.domain.errors import FerrousError
from ferrous.pipeline_config.plan import Artifacts
from ferrous.pipeline_config.variables import expand

#: The archive's name when ``artifacts:name`` is not given (GitLab's default).
DEFAULT_NAME = "artifacts"
#: The ``artifacts:reports`` that are uploaded (the others are lint warnings already).
REPORT_KINDS = ("junit",)

Note = Callable[[str], None]


class ArtifactTransfer(Protocol):
    """Stores a job's artifacts and hands out its dependencies' ones.

    Called from the job's thread; every call blocks until it is done. A failure raises
    ``OSError`` or a ``FerrousError`` whose message says what went wrong (a corrupt or hostile
    archive, a refusal of the server): the job fails with it (a system failure).
    """

    def download(self, source: str, workspace: Path) -> int | None:
        """Unpack the artifacts of job ``source`` (its key) into ``workspace``: the number of
        files, or None when that job has none."""
        ...

    def upload(self, key: str, workspace: Path, files: Sequence[str], name: str) -> list[str]:
        """Store ``files`` (relative to ``workspace``) as the artifacts of job ``key``,
        replacing any earlier ones; ``name`` is ``artifacts:name``, expanded. Returns
        warnings for the job log: symlinks left out because they point outside the
        workspace (an archive holding them would be refused by whoever unpacks it)."""
        ...

    def upload_reports(
        self, key: str, kind: str, workspace: Path, files: Sequence[str]
    ) -> list[str]:
        """Store report files (``kind``: ``junit``) of job ``key``; lines for the job log."""
        ...


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


def artifacts_name(spec: Artifacts, variables: Mapping[str, str]) -> str:
    """``artifacts:name`` with variables expanded; ``artifacts`` when empty or not given."""
    return (expand(spec.name, variables).strip() if spec.name else "") or DEFAULT_NAME


def matches_when(when: str, succeeded: bool) -> bool:
    """``artifacts:when`` and ``cache:when``: on_success, on_failure or always."""
    if when == "always":
        return True
    return succeeded if when == "on_success" else not succeeded


class LocalArtifactStore:
    """A run's artifacts: ``<key>.tar.zst`` per job, ``<key>.<kind>.tar.zst`` per report
    (keys are folder-safe job names, which never hold a dot)."""

    def __init__(self, root: Path) -> None:
        self._folder = ArchiveFolder(root)

    def archive(self, key: str) -> Path:
        """Where job ``key``'s artifacts are (or would be) kept."""
        return self._folder.path(key)

    def has(self, key: str) -> bool:
        return self._folder.has(key)

    def files(self, key: str) -> list[str]:
        return self._folder.files(key)

    def download(self, source: str, workspace: Path) -> int | None:
        return self._folder.unpack(source, workspace)

    def upload(self, key: str, workspace: Path, files: Sequence[str], name: str) -> list[str]:
        return list(self._folder.save(key, workspace, files).skipped)

    def upload_reports(
        self, key: str, kind: str, workspace: Path, files: Sequence[str]
    ) -> list[str]:
        packed = self._folder.save(f"{key}.{kind}", workspace, files)
        return [f"Saved the {kind} report ({packed.files} files) in {packed.path}"]


class ArtifactsFailed(FerrousError):
    """Artifacts could not be downloaded or uploaded."""


def download_artifacts(
    sources: Sequence[tuple[str, str]],
    transfer: ArtifactTransfer,
    workspace: Path,
    note: Note,
    check: Callable[[], None],
) -> None:
    """Unpack each (job name, key)'s artifacts in turn (later ones win); ``check`` runs
    before each, to stop at a cancel. A failure raises ``ArtifactsFailed`` naming the job."""
    for name, key in sources:
        check()
        try:
            count = transfer.download(key, workspace)
        except (OSError, FerrousError) as exc:
            raise ArtifactsFailed(f"artifacts of {name}: {_reason(exc)}") from exc
        if count is None:
            note(f"No artifacts of {name} to download")
        else:
            note(f"Downloading artifacts for {name} ({count} files)")


def upload_artifacts(
    spec: Artifacts,
    transfer: ArtifactTransfer,
    key: str,
    workspace: Path,
    variables: Mapping[str, str],
    untracked: Callable[[], list[str]],
    note: Note,
) -> None:
    """Upload the ``paths`` archive, then the ``reports:junit`` files, as GitLab does after a
    job whose result ``artifacts:when`` accepts; a failure raises ``ArtifactsFailed``."""
    if spec.paths or spec.untracked:
        note("Uploading artifacts...")
        selection = select_artifacts(spec, workspace, variables, untracked)
        for warning in selection.warnings:
            note(f"WARNING: {warning}")
        if not selection.files:
            note("WARNING: No files to upload")
        else:
            name = artifacts_name(spec, variables)
            try:
                skipped = transfer.upload(key, workspace, selection.files, name)
            except (OSError, FerrousError) as exc:
                raise ArtifactsFailed(f"uploading artifacts: {_reason(exc)}") from exc
            for line in skipped:
                note(f"WARNING: not uploaded: {line}")
            note(f"Uploaded {len(selection.files) - len(skipped)} artifact files")
    for kind, patterns in spec.reports.items():
        if kind not in REPORT_KINDS or not patterns:
            continue
        note(f"Uploading {kind} report...")
        selection = select_files(workspace, [expand(p, variables) for p in patterns])
        for warning in selection.warnings:
            note(f"WARNING: {warning}")
        if not selection.files:
            note(f"WARNING: No {kind} report files to upload")
            continue
        try:
            lines = transfer.upload_reports(key, kind, workspace, selection.files)
        except (OSError, FerrousError) as exc:
            raise ArtifactsFailed(f"uploading the {kind} report: {_reason(exc)}") from exc
        for line in lines:
            note(line)


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, FerrousError) else str(exc)
