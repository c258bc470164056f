"""Auto-cancel redundant builds: a new build of a ref cancels what it makes redundant.

GitLab's "auto-cancel redundant pipelines" (``CancelRedundantPipelinesService``), run in the
transaction that creates the new build, so a crash cannot leave it half done. The candidates
are the older builds (lower number) of the same pipeline and ref, created in the last
``WINDOW``, still unfinished and not waiting on a manual job, whose commit is neither the
new build's nor the ref's current head: a new commit is what makes a build redundant, so a
schedule or a manual run at the same commit cancels nothing. Every source counts (push,
merge request, api, schedule, ...), as GitLab counts every CI source. What is canceled in
each candidate is decided by its own ``workflow:auto_cancel:on_new_commit``
(``domain.auto_cancel``). A new build that runs nothing (a config error, or rules left no
job) cancels nothing either, as in GitLab, where such a pipeline stops before this step.
An older build changed meanwhile (an agent reported) makes the save raise ``StaleState``,
and the bus runs the whole trigger again on fresh state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from ferrous.application.ports import UnitOfWork
from ferrous.domain.auto_cancel import auto_cancel
from ferrous.domain.build import Build

log = structlog.get_logger(__name__)

WINDOW = timedelta(days=7)  # GitLab's: older builds are left alone
LIMIT = 100  # candidates per new build (GitLab: 3000 pipelines)


async def cancel_redundant_builds(
    new: Build, *, head_sha: str | None, uow: UnitOfWork, now: datetime
) -> list[str]:
    """Auto-cancel what ``new`` makes redundant; the ids of the builds changed."""
    if not new.jobs:
        return []
    keep = [sha for sha in (new.sha, head_sha) if sha]
    candidates = await uow.builds.unfinished_before(
        new.pipeline_id, new.ref, new.number, now - WINDOW, LIMIT, excluding_shas=keep
    )
    changed = []
    for build_id in candidates:
        older = await uow.builds.get(build_id)
        jobs = auto_cancel(older, by=new, now=now)
        if jobs:
            await uow.builds.save(older)
            changed.append(older.id)
            log.info(
                "build_auto_canceled",
                build_id=older.id,
                canceled_by=new.id,
                mode=older.auto_cancel.value,
                jobs=jobs,
            )
    return changed
