"""``ferrous tests BUILD_ID``: a build's test report, its totals and then its failures.

Each failure shows where it is (suite, class, name, job) and the head of its text. The
exit code is 0 whatever the tests did: the build's status is the gate, this is the why.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, print_json
from ferrous.cli.remote import JsonOption, UrlOption

HELP = "Show a build's test report: totals, then the failures."
FAILED = ("failed", "error")


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def totals_line(totals: dict[str, Any]) -> str:
    parts = [f"{totals['passed']} passed", f"{totals['failed']} failed"]
    if totals["errored"]:
        parts.append(f"{totals['errored']} errors")
    if totals["skipped"]:
        parts.append(f"{totals['skipped']} skipped")
    return f"{totals['total']} tests: {', '.join(parts)} ({_seconds(totals['duration'])})"


def failure_lines(case: dict[str, Any], head: int) -> list[str]:
    where = " > ".join(part for part in (case["suite"], case["class_name"]) if part)
    title = f"{case['status'].upper()}  {case['name']}"
    lines = [title + (f"  [{where}]" if where else "") + f"  (job {case['job_name']})"]
    if case["file"]:
        lines.append(f"    {case['file']}")
    text = (case["failure"] or "").splitlines()
    lines += [f"    {line}" for line in text[:head]]
    if 0 < head < len(text):
        lines.append(f"    ... ({len(text) - head} more lines)")
    return lines


def build_tests_command(
    build_id: Annotated[str, typer.Argument(help="The build's id.")],
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="Show at most this many failures.")
    ] = 20,
    lines: Annotated[int, typer.Option(min=0, help="Lines of each failure's text.")] = 10,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    client = Client(url)
    report = client.get(f"/builds/{build_id}/tests", params={"limit": limit})
    if as_json:
        print_json(report)
        return
    totals = report["totals"]
    if not totals["total"]:
        sys.stdout.write("no test reports in this build\n")
        return
    sys.stdout.write(totals_line(totals) + "\n")
    failures = [case for case in report["cases"] if case["status"] in FAILED]
    for case in failures:
        sys.stdout.write("\n" + "\n".join(failure_lines(case, lines)) + "\n")
    hidden = totals["failed"] + totals["errored"] - len(failures)
    if hidden > 0:
        sys.stdout.write(f"\n({hidden} more failures: raise --limit, or see --json)\n")
