"""Create, enable and disable pipelines of a project."""

from __future__ import annotations

from ferrous.application.commands import CreatePipeline, DisablePipeline, EnablePipeline
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.project import Pipeline


async def create_pipeline(cmd: CreatePipeline, uow: UnitOfWork, deps: Dependencies) -> Pipeline:
    await uow.projects.get(cmd.project_id)
    try:
        await uow.pipelines.get_by_name(cmd.project_id, cmd.name)
    except NotFound:
        pass
    else:
        raise Conflict(f"the project has a pipeline named {cmd.name!r} already")
    pipeline = Pipeline.create(
        project_id=cmd.project_id,
        name=cmd.name,
        config_path=cmd.config_path,
        now=deps.clock.now(),
    )
    await uow.pipelines.add(pipeline)
    await uow.commit()
    return pipeline


async def enable_pipeline(cmd: EnablePipeline, uow: UnitOfWork, deps: Dependencies) -> Pipeline:
    pipeline = await uow.pipelines.get(cmd.pipeline_id)
    pipeline.enable()
    await uow.pipelines.save(pipeline)
    await uow.commit()
    return pipeline


async def disable_pipeline(cmd: DisablePipeline, uow: UnitOfWork, deps: Dependencies) -> Pipeline:
    pipeline = await uow.pipelines.get(cmd.pipeline_id)
    pipeline.disable()
    await uow.pipelines.save(pipeline)
    await uow.commit()
    return pipeline
