"""``ferrous lint``: check a pipeline and show what it would run, for people and for scripts.

The JSON form is a stable interface that scripts depend on: fields are only ever added.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ferrous.cli.checkout import checkout_context, parse_assignments
from ferrous.pipeline_config.compiler import CompileResult, compile_pipeline
from ferrous.pipeline_config.plan import ExecutionPlan
from ferrous.pipeline_config.problems import ConfigProblem

HELP = "Check a pipeline file and show its jobs, or every problem with its line and column."


def lint_json(result: CompileResult) -> dict[str, Any]:
    plan = result.plan
    return {
        "created": plan.created,
        "name": plan.name,
        "file": result.file,
        "stages": list(plan.stages),
        "jobs": [
            {
                "name": job.name,
                "stage": job.stage,
                "when": job.when.value,
                "allow_failure": job.allow_failure.to_json(),
                "needs": None if job.needs is None else [n.job for n in job.needs],
            }
            for job in plan.jobs
        ],
        "problems": [p.to_json() for p in result.problems],
    }


class _Colors:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text


def _source_line(repo: Path, problem: ConfigProblem, cache: dict[str, list[str]]) -> str | None:
    if not problem.file or problem.line < 1:
        return None
    if problem.file not in cache:
        try:
            cache[problem.file] = (repo / problem.file).read_text(errors="replace").splitlines()
        except OSError:
            cache[problem.file] = []
    lines = cache[problem.file]
    return lines[problem.line - 1] if problem.line <= len(lines) else None


def render_problems(problems: list[ConfigProblem], repo: Path, color: bool) -> list[str]:
    """Each problem with its place and the offending line quoted, for people (lint and run)."""
    paint = _Colors(color)
    out: list[str] = []
    cache: dict[str, list[str]] = {}
    for problem in problems:
        tone = "31;1" if problem.severity == "error" else "33;1"
        where = f"{problem.file}:{problem.line}:{problem.column}" if problem.line else problem.file
        prefix = f"{where}: " if where else ""
        out.append(f"{paint(problem.severity, tone)}: {prefix}{problem.message}")
        line = _source_line(repo, problem, cache)
        if line is not None:
            out.append(f"  {problem.line:>4} | {line}")
            out.append("       | " + " " * max(problem.column - 1, 0) + paint("^", tone))
    return out


def render_text(result: CompileResult, repo: Path, color: bool) -> str:
    paint = _Colors(color)
    out: list[str] = []
    plan = result.plan
    out.extend(_render_graph(plan, paint))
    out.extend(render_problems(result.problems, repo, color))
    errors = sum(p.severity == "error" for p in result.problems)
    warnings = len(result.problems) - errors
    verdict = paint("invalid", "31;1") if errors else paint("valid", "32;1")
    summary = f"{result.file}: {verdict}, {errors} error(s), {warnings} warning(s)"
    if not plan.created and not errors:
        summary += "; workflow:rules create no pipeline for this trigger"
    out.append(summary)
    return "\n".join(out)


def _render_graph(plan: ExecutionPlan, paint: _Colors) -> list[str]:
    out: list[str] = []
    if plan.name:
        out.append(paint(plan.name, "1"))
    undefined = [s for s in dict.fromkeys(j.stage for j in plan.jobs) if s not in plan.stages]
    for stage in (*plan.stages, *undefined):
        jobs = [j for j in plan.jobs if j.stage == stage]
        if not jobs:
            continue
        out.append(paint(stage, "1;36"))
        for job in jobs:
            details = []
            if job.when.value != "on_success":
                details.append(f"when: {job.when.value}")
            allowed = job.allow_failure.to_json()
            if allowed:
                details.append(f"allow_failure: {json.dumps(allowed)}")
            if job.needs is not None:
                details.append("needs: [" + ", ".join(n.job for n in job.needs) + "]")
            name = paint(job.name, "2") if job.when.value == "never" else job.name
            suffix = paint("  " + "; ".join(details), "2") if details else ""
            out.append(f"  {name}{suffix}")
    return out


def lint_command(
    path: Annotated[Path, typer.Argument(help="A repository folder or a pipeline file.")] = Path(),
    output_format: Annotated[
        str, typer.Option("--format", help="text (for people) or json (for scripts).")
    ] = "text",
    branch: Annotated[str | None, typer.Option(help="Lint as a pipeline for this branch.")] = None,
    tag: Annotated[str | None, typer.Option(help="Lint as a pipeline for this tag.")] = None,
    source: Annotated[
        str, typer.Option(help="CI_PIPELINE_SOURCE, e.g. push, web, schedule.")
    ] = "push",
    var: Annotated[list[str] | None, typer.Option("--var", help="KEY=VALUE, repeatable.")] = None,
    changed: Annotated[
        list[str] | None, typer.Option("--changed", help="A changed file for rules:changes.")
    ] = None,
) -> None:
    if output_format not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--format")
    if path.is_file():
        repo, file = path.parent, path.name
    elif path.is_dir():
        repo, file = path, None
    else:
        raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    context = checkout_context(
        repo,
        branch=branch,
        tag=tag,
        source=source,
        variables=parse_assignments(var or [], "--var"),
        changed=changed,
    )
    result = compile_pipeline(repo, context, file=file)
    if output_format == "json":
        sys.stdout.write(json.dumps(lint_json(result), indent=2) + "\n")
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        sys.stdout.write(render_text(result, repo, color) + "\n")
    raise typer.Exit(1 if result.has_errors else 0)
