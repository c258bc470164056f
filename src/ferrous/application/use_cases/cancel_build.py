"""A person cancels a build: every unfinished job ends, running ones are told to stop."""

from __future__ import annotations

from ferrous.application.commands import CancelBuild
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.build import Build


async def cancel_build(cmd: CancelBuild, uow: UnitOfWork, deps: Dependencies) -> Build:
    build = await uow.builds.get(cmd.build_id)
    build.cancel(deps.clock.now())
    await uow.builds.save(build)
    await uow.commit()
    return build
