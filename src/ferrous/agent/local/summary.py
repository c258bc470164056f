"""The end of a local run: a table for people, a JSON document for scripts and tests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ferrous.agent.local.records import JobRecord, RunResult
from ferrous.domain.statuses import JobStatus


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _status_text(record: JobRecord) -> str:
    if record.status == JobStatus.FAILED and record.failure_allowed:
        return "failed (allowed)"
    if record.status == JobStatus.FAILED and record.failure_reason == "job_execution_timeout":
        return "failed (timeout)"
    return record.status.value


def summary_table(result: RunResult) -> str:
    headers = ("job", "stage", "status", "exit", "attempts", "duration")
    rows = [
        (
            record.name,
            record.spec.stage,
            _status_text(record),
            "" if record.exit_code is None else str(record.exit_code),
            str(record.attempts) if record.attempts else "",
            f"{record.duration:.2f}s" if record.duration is not None else "",
        )
        for record in result.jobs
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    verdict = "canceled" if result.canceled else result.status.value
    lines.append("")
    lines.append(f"pipeline {verdict} in {result.duration:.2f}s; logs in {result.run_dir}")
    return "\n".join(lines)


def summary_json(result: RunResult) -> dict[str, Any]:
    return {
        "status": "canceled" if result.canceled else result.status.value,
        "run_dir": str(result.run_dir),
        "duration": round(result.duration, 3),
        "jobs": [
            {
                "name": record.name,
                "stage": record.spec.stage,
                "status": record.status.value,
                "exit_code": record.exit_code,
                "attempts": record.attempts,
                "allow_failure_hit": record.failure_allowed,
                "failure_reason": record.failure_reason,
                "coverage": record.coverage,
                "started_at": _iso(record.started_at),
                "finished_at": _iso(record.finished_at),
                "log": str(record.log) if record.started_at is not None else None,
                "artifacts": str(record.artifacts) if record.artifacts.is_file() else None,
            }
            for record in result.jobs
        ],
    }


def write_summary_json(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary_json(result), indent=2) + "\n", encoding="utf-8")
