"""Which artifacts outlive their expiry: those of each ref's latest successful build.

A build's artifacts are kept (``locked``) while it is the newest successful build (by number)
of its pipeline and ref and its project keeps latest artifacts, as GitLab keeps those of the
most recent successful pipeline of each ref. Keyed by pipeline as well as ref: a project's
pipelines build different things, and the docs pipeline succeeding on a release branch must
not let that branch's binaries go.

Nothing is stored: the condition is evaluated where it is needed (the reads and the
cleanup's DELETE), so a newer success or a changed setting counts at once, with nothing to
keep in step. ``ix_builds_pipeline_id_ref_status_number`` makes "a newer success?" one
index probe.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from ferrous.domain.statuses import BuildStatus
from ferrous.infrastructure.sql.schema import builds, projects

_newer = builds.alias("newer_builds")
_NEWER_SUCCESS = (
    select(_newer.c.id)
    .where(
        _newer.c.pipeline_id == builds.c.pipeline_id,
        _newer.c.ref == builds.c.ref,
        _newer.c.status == BuildStatus.SUCCESS.value,
        _newer.c.number > builds.c.number,
    )
    .exists()
)


def kept_as_latest(build_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """True when the build ``build_id`` (a column of the enclosing statement) is its ref's
    latest success in a project that keeps latest artifacts."""
    return (
        select(builds.c.id)
        .join(projects, projects.c.id == builds.c.project_id)
        .where(
            builds.c.id == build_id,
            builds.c.status == BuildStatus.SUCCESS.value,
            projects.c.keep_latest_artifacts.is_(True),
            ~_NEWER_SUCCESS,
        )
        .exists()
    )
