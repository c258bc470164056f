"""Benchmark: parse + lint of a generated 500-job pipeline (target < 0.2 s).

Prints JSON. Measures the compiler in-process (median of several runs, after one warm-up) and
the whole ``ferrous lint --format json`` command as a fresh process (interpreter start-up and
imports included, with compiled bytecode as an installed package has: see bench/bytecode.py),
which is what a person or a pre-commit hook waits for.

    .venv/bin/python bench/lint_pipeline.py [--jobs 500] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import bytecode_env
from ferrous.pipeline_config.compiler import compile_pipeline
from ferrous.pipeline_config.context import TriggerContext

LINT = (sys.executable, "-m", "ferrous", "lint", "--format", "json", "--branch", "main")


def generate(jobs: int) -> str:
    """A file with the features real pipelines use: templates, anchors, rules, needs, matrix."""
    lines = [
        "stages: [build, test, deploy]",
        "variables:",
        "  GLOBAL: value",
        "  IMAGE: python:3.12",
        ".rules: &rules",
        "  - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
        "  - if: $CI_PIPELINE_SOURCE == 'merge_request_event'",
        "    changes: ['src/**/*.py']",
        "  - when: manual",
        "    allow_failure: true",
        ".base:",
        "  image: $IMAGE",
        "  before_script: [echo setup]",
        "  retry: {max: 2, when: [runner_system_failure]}",
        "  cache: {key: deps-$CI_COMMIT_REF_SLUG, paths: [.cache/]}",
        "  tags: [linux]",
    ]
    per_stage = jobs // 3
    for index in range(jobs):
        stage = ("build", "test", "deploy")[min(index // per_stage, 2)]
        lines += [
            f"job-{index}:",
            "  extends: .base",
            f"  stage: {stage}",
            "  variables:",
            f"    JOB_INDEX: '{index}'",
            "  script:",
            f"    - echo job {index}",
            "    - make test",
            "  rules: *rules",
            "  artifacts: {paths: [out/], expire_in: 1 week}",
        ]
        if stage != "build":
            lines.append(f"  needs: [job-{index % per_stage}]")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as pyc:
        repo = Path(tmp)
        text = generate(args.jobs)
        (repo / ".gitlab-ci.yml").write_text(text)
        context = TriggerContext(branch="main")
        result = compile_pipeline(repo, context)
        assert not result.has_errors, result.problems[:3]
        in_process = []
        for _ in range(args.runs):
            start = time.perf_counter()
            compile_pipeline(repo, context)
            in_process.append(time.perf_counter() - start)
        command = []
        pycache = Path(pyc)
        env = bytecode_env(pycache)
        subprocess.run([*LINT, str(repo)], env=env, capture_output=True, check=False)  # warm-up
        for _ in range(args.runs):
            start = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ferrous",
                    "lint",
                    str(repo),
                    "--format",
                    "json",
                    "--branch",
                    "main",
                ],
                capture_output=True,
                check=False,
            )
            command.append(time.perf_counter() - start)
            assert done.returncode == 0, done.stderr[-500:]
    print(
        json.dumps(
            {
                "benchmark": "lint_pipeline",
                "jobs": args.jobs,
                "file_lines": text.count("\n"),
                "compile_seconds_median": round(statistics.median(in_process), 4),
                "compile_seconds_min": round(min(in_process), 4),
                "lint_command_seconds_median": round(statistics.median(command), 4),
                "target_seconds": 0.2,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
