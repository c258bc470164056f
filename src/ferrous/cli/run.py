"""``ferrous run``: the checkout's pipeline on this machine, with the agents' job runner.

This is the edge: it reads the command line and the checkout, compiles the pipeline, picks the
jobs, hands them to ``ferrous.agent.local.session`` and turns the result into an exit status.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ferrous.agent.local.selection import UnknownJob, resolve_names, with_upstream
from ferrous.cli.checkout import checkout_context, parse_assignments
from ferrous.cli.lint import render_problems
from ferrous.pipeline_config.compiler import compile_pipeline
from ferrous.pipeline_config.plan import ExecutionPlan, JobSpec

HELP = """Run the pipeline of a checkout on this machine, uncommitted changes included.

Jobs start as soon as their needs (or earlier stages) allow, at most -j at once, each in its
own copy of the checkout under .ferrous/runs/<run-id>/; artifacts and caches flow between
them as on GitLab. Manual jobs are not run unless named with --manual (or --job).
Exit status: 0 when the pipeline passed, 1 when it did not, 130 when interrupted."""


def _split_path(path: Path) -> tuple[Path, str | None]:
    if path.is_file():
        return path.parent, path.name
    if path.is_dir():
        return path, None
    raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")


def _chosen_jobs(
    plan: ExecutionPlan, only: list[str], manual: list[str]
) -> tuple[tuple[JobSpec, ...], frozenset[str]]:
    """The jobs to include and the manual ones to play; --job plays the jobs it names."""
    jobs = plan.runnable_jobs
    try:
        named = resolve_names(jobs, only, "--job")
        played = resolve_names(jobs, manual, "--manual")
    except UnknownJob as exc:
        raise typer.BadParameter(exc.message) from exc
    if named:
        jobs = with_upstream(jobs, named)
    return jobs, frozenset(job.name for job in [*named, *played])


def run_command(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="The checkout (or its pipeline file) to run.")
    ] = Path(),
    parallel: Annotated[
        int | None,
        typer.Option(
            "-j", "--parallel", min=1, metavar="N", help="Jobs at once (default: CPU count)."
        ),
    ] = None,
    job: Annotated[
        list[str] | None,
        typer.Option(
            "--job", metavar="NAME", help="Run only this job and what it needs; repeatable."
        ),
    ] = None,
    manual: Annotated[
        list[str] | None,
        typer.Option("--manual", metavar="NAME", help="Play this manual job; repeatable."),
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", metavar="KEY=VALUE", help="KEY=VALUE, repeatable.")
    ] = None,
    branch: Annotated[
        str | None, typer.Option(metavar="NAME", help="Run as a pipeline for this branch.")
    ] = None,
    tag: Annotated[
        str | None, typer.Option(metavar="NAME", help="Run as a pipeline for this tag.")
    ] = None,
    source: Annotated[
        str, typer.Option(metavar="SOURCE", help="CI_PIPELINE_SOURCE: push, web, schedule, ...")
    ] = "push",
    json_summary: Annotated[
        Path | None,
        typer.Option("--json-summary", metavar="FILE", help="Write the result as JSON here."),
    ] = None,
    keep_workspaces: Annotated[
        bool, typer.Option("--keep-workspaces", help="Keep each job's folder after it ends.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            metavar="shell|sandbox",
            help="shell: jobs run as plain processes; sandbox: in bubblewrap.",
        ),
    ] = "shell",
    network: Annotated[
        bool, typer.Option("--network/--no-network", help="Sandbox only: give jobs a network.")
    ] = True,
) -> None:
    from ferrous.agent.executor_choice import ExecutorChoice

    try:
        choice = ExecutorChoice.parse(executor, network=network)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--executor") from exc
    if (problem := choice.problem()) is not None:
        raise typer.BadParameter(problem, param_hint="--executor")
    repo, file = _split_path(path)
    repo = repo.resolve()
    context = checkout_context(
        repo,
        branch=branch,
        tag=tag,
        source=source,
        variables=parse_assignments(var or [], "--var"),
        changed=None,
    )
    compiled = compile_pipeline(repo, context, file=file)
    if compiled.problems:
        color = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        sys.stderr.write("\n".join(render_problems(compiled.problems, repo, color)) + "\n")
    if compiled.has_errors:
        sys.stderr.write(f"{compiled.file}: invalid pipeline, nothing was run\n")
        raise typer.Exit(1)
    plan = compiled.plan
    if not plan.created:
        sys.stdout.write("workflow:rules create no pipeline for this trigger; nothing to run\n")
        raise typer.Exit(0)
    jobs, played = _chosen_jobs(plan, job or [], manual or [])
    # The runner is imported here, not at the top: every other command would pay for it.
    from ferrous.agent.local.session import LocalSession
    from ferrous.agent.local.summary import write_summary_json

    session = LocalSession(
        repo,
        jobs,
        stream=sys.stdout.buffer,
        max_parallel=parallel,
        play=played,
        keep_workspaces=keep_workspaces,
        executor=choice,
    )
    ref = context.tag or context.branch or "?"
    session.console.line(
        f"ferrous run: {len(jobs)} jobs from {compiled.file} ({ref} @ {context.sha[:8]}), "
        f"up to {session.max_parallel} at once ({choice.describe()}), in {session.layout.root}"
    )
    result = session.run()
    if json_summary is not None:
        write_summary_json(result, json_summary)
    if session.console.broken:  # stdout was closed under us: spare Python's flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if result.canceled:
        raise typer.Exit(130)
    raise typer.Exit(0 if result.passed else 1)
