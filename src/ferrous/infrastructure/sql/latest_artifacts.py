"""Which artifacts outlive their expiry: those of each branch's and tag's latest success.

A build's artifacts are kept (``locked``) once it has succeeded, until a newer build (by
number) of its pipeline and ref succeeds, while its project keeps latest artifacts: GitLab's
artifact lock. "Has succeeded" is the build's sticky ``has_succeeded``, not its status: a
retry of one of its jobs makes it ``running`` and maybe ``failed`` again, and the retried
job must still download its dependencies' artifacts, and the cleanup must not take them
after a failed retry. The newer build's success is sticky too: once it succeeded, a retry
of it does not bring the older build's lock back.

A ref is its kind and name: a tag ``v1`` and a branch ``v1`` do not release each other. A
build of a bare commit (no branch or tag: its ref is the sha) has no later builds on its
"ref", so it locks nothing and its artifacts expire. Keyed by pipeline as well: a
project's pipelines build different things, and the docs pipeline succeeding on a release
branch must not let that branch's binaries go.

Only the facts are stored; the condition is evaluated where it is needed (the reads and the
cleanup's DELETE), so a newer success or a changed setting counts at once.
``ix_builds_pipeline_id_ref_kind_ref_has_succeeded_number`` makes "a newer success?" one
index probe.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, true

from ferrous.domain.ref_kind import RefKind
from ferrous.infrastructure.sql.schema import builds, projects

_KINDS_WITH_LATEST = [kind.value for kind in RefKind if kind.has_latest]
_newer = builds.alias("newer_builds")
_NEWER_SUCCESS = (
    select(_newer.c.id)
    .where(
        _newer.c.pipeline_id == builds.c.pipeline_id,
        _newer.c.ref_kind == builds.c.ref_kind,
        _newer.c.ref == builds.c.ref,
        _newer.c.has_succeeded == true(),
        _newer.c.number > builds.c.number,
    )
    .exists()
)


def kept_as_latest(build_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """True when the build ``build_id`` (a column of the enclosing statement) has succeeded,
    on a branch or tag, with no newer success of its ref, in a project that keeps latest
    artifacts."""
    return (
        select(builds.c.id)
        .join(projects, projects.c.id == builds.c.project_id)
        .where(
            builds.c.id == build_id,
            builds.c.has_succeeded == true(),
            builds.c.ref_kind.in_(_KINDS_WITH_LATEST),
            projects.c.keep_latest_artifacts.is_(True),
            ~_NEWER_SUCCESS,
        )
        .exists()
    )
