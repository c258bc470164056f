"""Auto-cancel of redundant builds: what a newer build of the same ref cancels in an older one.

GitLab's "auto-cancel redundant pipelines" (``Ci::PipelineCreation::CancelRedundantPipelines
Service``), decided per older build by the ``workflow:auto_cancel:on_new_commit`` that build was
compiled with:

- ``conservative`` (the default): the older build is canceled as a whole (its pending,
  running, created, delayed and manual jobs) unless a job that is not ``interruptible`` has
  started; once one has, it is left to finish. Jobs that never started count as
  interruptible, so a build still waiting for agents is always canceled.
- ``interruptible``: only its unfinished ``interruptible: true`` jobs are canceled, running
  or not; the others go on (what depended on a canceled job is skipped, as usual).
- ``none``: it is never auto-canceled.

Which older builds are candidates (same pipeline and ref, another commit, not finished, not
waiting on a manual job) is the caller's query; see ``application.auto_cancel``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from ferrous.domain.events import BuildAutoCanceled
from ferrous.domain.statuses import BuildStatus

if TYPE_CHECKING:
    from datetime import datetime

    from ferrous.domain.build import Build


class AutoCancel(StrEnum):
    """``workflow:auto_cancel:on_new_commit``."""

    CONSERVATIVE = "conservative"
    INTERRUPTIBLE = "interruptible"
    NONE = "none"


def auto_cancel(build: Build, *, by: Build, now: datetime) -> list[str]:
    """Cancel what ``by`` (a newer build of the same ref) makes redundant in ``build``.

    Returns the names of the jobs canceled (none: the build was left alone). The build
    records ``BuildAutoCanceled`` naming ``by``, so the UI and the audit trail can say why.
    """
    if build.status.is_finished or build.status == BuildStatus.MANUAL:
        return []  # GitLab: a pipeline blocked on a manual job is not cancelable
    unfinished = [job for job in build.jobs.values() if not job.status.is_finished]
    if build.auto_cancel == AutoCancel.NONE:
        return []
    if build.auto_cancel == AutoCancel.CONSERVATIVE:
        if any(job.attempt > 0 and not job.definition.interruptible for job in build.jobs.values()):
            return []  # a non-interruptible job has started: the build runs to its end
        names = [job.name for job in unfinished]
        build.cancel(now)
    else:
        names = [job.name for job in unfinished if job.definition.interruptible]
        if not names:
            return []
        build.cancel_jobs(names, now)
    build.record(BuildAutoCanceled(build_id=build.id, canceled_by=by.id, jobs=tuple(names)))
    return names
