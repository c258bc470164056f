"""``ferrous lint`` as scripts use it: its JSON, its exit codes, its options, its text.

The JSON form is a stable interface: ``{"created", "name", "file", "stages", "jobs": [{"name",
"stage", "when", "allow_failure", "needs"}], "problems": [...]}``; exit 0 without errors, 1
with errors, 2 for a usage error. A few tests run the installed command as a real process; the
rest go through Typer's ``CliRunner``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ferrous.cli.main import app

JOB_KEYS = {"name", "stage", "when", "allow_failure", "needs"}
PROBLEM_KEYS = {"severity", "message", "file", "line", "column", "path", "code"}

PIPELINE = """\
stages: [build, test, deploy]

build:
  stage: build
  script: make
  parallel: 2

lint:
  stage: build
  script: make lint
  allow_failure:
    exit_codes: [3, 4]

docs:
  stage: build
  script: make docs
  allow_failure: true
  rules:
    - changes: [docs/**]

nightly:
  stage: build
  script: make nightly
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule"

test:
  stage: test
  needs:
    - build
    - job: nightly
      optional: true
  script: make test

quick:
  stage: test
  needs: []
  script: make quick

release:
  stage: deploy
  script: make release
  rules:
    - if: $CI_COMMIT_TAG
      when: manual
    - if: $CI_COMMIT_BRANCH == "stable"
    - if: $FORCE_RELEASE == "yes"
      allow_failure:
        exit_codes: 1
"""


@pytest.fixture(autouse=True)
def _no_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`lint` asks git for the branch and default branch: keep the user's git config out."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("NO_COLOR", "1")


def write(folder: Path, text: str, name: str = ".gitlab-ci.yml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def lint(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["lint", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def lint_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out = lint(*args, "--format", "json")
    return code, json.loads(out)


def jobs_by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in report["jobs"]}


def ferrous_command() -> list[str]:
    """The installed console script beside this interpreter, else the same entry point."""
    script = Path(sys.executable).parent / "ferrous"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from ferrous.cli.main import main; main()"]


def run_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ferrous_command(), "lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the JSON interface ----------------------------------------------------------------------


def test_json_shape_and_types(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    code, report = lint_json(str(tmp_path), "--branch", "main")
    assert code == 0
    assert set(report) == {"created", "name", "file", "stages", "jobs", "problems"}
    assert report["created"] is True
    assert report["name"] is None
    assert report["file"] == ".gitlab-ci.yml"
    assert report["stages"] == [".pre", "build", "test", "deploy", ".post"]
    assert report["problems"] == []
    for job in report["jobs"]:
        assert set(job) == JOB_KEYS
        assert isinstance(job["name"], str)
        assert isinstance(job["stage"], str)
        assert job["when"] in {"on_success", "on_failure", "always", "manual", "delayed", "never"}
        assert isinstance(job["allow_failure"], bool | dict)
        assert job["needs"] is None or all(isinstance(n, str) for n in job["needs"])


def test_json_lists_every_job_in_file_order_with_parallel_jobs_expanded(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, report = lint_json(str(tmp_path), "--branch", "main")
    assert [job["name"] for job in report["jobs"]] == [
        "build 1/2",
        "build 2/2",
        "lint",
        "docs",
        "nightly",
        "test",
        "quick",
        "release",
    ]
    assert [job["stage"] for job in report["jobs"]] == ["build"] * 5 + ["test"] * 2 + ["deploy"]


def test_json_allow_failure_is_a_boolean_or_exit_codes(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, report = lint_json(str(tmp_path), "--branch", "main")
    jobs = jobs_by_name(report)
    assert jobs["build 1/2"]["allow_failure"] is False
    assert jobs["docs"]["allow_failure"] is True
    assert jobs["lint"]["allow_failure"] == {"exit_codes": [3, 4]}
    # a rule's allow_failure:exit_codes, given as a lone number, is still a list
    _, forced = lint_json(str(tmp_path), "--branch", "main", "--var", "FORCE_RELEASE=yes")
    assert jobs_by_name(forced)["release"]["allow_failure"] == {"exit_codes": [1]}


def test_json_needs_null_empty_or_expanded(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, report = lint_json(str(tmp_path), "--branch", "main")
    jobs = jobs_by_name(report)
    assert jobs["lint"]["needs"] is None  # no `needs:`: waits for the earlier stages
    assert jobs["quick"]["needs"] == []  # `needs: []`: starts at once
    # `build` is both instances of the parallel job; `nightly` is optional and left out by its
    # rules on a push, so it is dropped
    assert jobs["test"]["needs"] == ["build 1/2", "build 2/2"]
    _, scheduled = lint_json(str(tmp_path), "--branch", "main", "--source", "schedule")
    assert jobs_by_name(scheduled)["test"]["needs"] == ["build 1/2", "build 2/2", "nightly"]


def test_json_needs_name_matrix_instances(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        build:
          stage: build
          script: make
          parallel:
            matrix:
              - OS: [linux, windows]
                ARCH: [amd64]
        test:
          needs:
            - job: build
              parallel:
                matrix:
                  - OS: linux
                    ARCH: amd64
          script: make test
        """,
    )
    _, report = lint_json(str(tmp_path), "--branch", "main")
    jobs = jobs_by_name(report)
    assert list(jobs) == ["build: [linux, amd64]", "build: [windows, amd64]", "test"]
    assert jobs["test"]["needs"] == ["build: [linux, amd64]"]


def test_json_keeps_excluded_jobs_with_when_never(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, report = lint_json(str(tmp_path), "--branch", "main")
    jobs = jobs_by_name(report)
    assert jobs["nightly"]["when"] == "never"
    assert jobs["release"]["when"] == "never"  # no rule matches a push to main


def test_json_created_false_when_workflow_rules_say_never(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        workflow:
          name: "Pipeline for $CI_COMMIT_REF_NAME"
          rules:
            - if: $CI_COMMIT_TAG
            - if: $CI_COMMIT_BRANCH == "main"
              when: never
            - when: always
        job:
          script: make
        """,
    )
    code, report = lint_json(str(tmp_path), "--branch", "main")
    assert (code, report["created"], report["problems"]) == (0, False, [])
    assert report["name"] == "Pipeline for main"
    assert [job["name"] for job in report["jobs"]] == ["job"]  # still listed
    _, feature = lint_json(str(tmp_path), "--branch", "feature")
    assert feature["created"] is True
    assert feature["name"] == "Pipeline for feature"


def test_json_problems_and_exit_code_one(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        build:
          script: make
          needs: [nowhere]
        """,
    )
    code, report = lint_json(str(tmp_path), "--branch", "main")
    assert code == 1
    assert report["created"] is False  # an invalid file creates no pipeline
    (problem,) = report["problems"]
    assert set(problem) == PROBLEM_KEYS
    assert problem == {
        "severity": "error",
        "message": problem["message"],
        "file": ".gitlab-ci.yml",
        "line": 3,
        "column": 11,
        "path": "jobs.build.needs[0]",
        "code": "unknown-need",
    }
    assert "'nowhere'" in problem["message"]
    assert report["jobs"][0]["name"] == "build"  # the plan is shown with the problems


def test_warnings_alone_exit_zero(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        variables:
          A: "1"
        variables:
          A: "2"
        job:
          script: echo $A
        """,
    )
    code, report = lint_json(str(tmp_path), "--branch", "main")
    assert code == 0
    assert [p["severity"] for p in report["problems"]] == ["warning"]
    assert report["created"] is True


# --- PATH ------------------------------------------------------------------------------------


def test_path_as_a_directory_finds_the_pipeline_file(tmp_path: Path) -> None:
    write(tmp_path, "from-gitlab:\n  script: x\n")
    _, report = lint_json(str(tmp_path), "--branch", "main")
    assert (report["file"], [j["name"] for j in report["jobs"]]) == (
        ".gitlab-ci.yml",
        ["from-gitlab"],
    )
    write(tmp_path, "from-ferrous:\n  script: x\n", name=".ferrous.yml")  # wins
    _, report = lint_json(str(tmp_path), "--branch", "main")
    assert (report["file"], [j["name"] for j in report["jobs"]]) == (
        ".ferrous.yml",
        ["from-ferrous"],
    )


def test_path_as_a_file_lints_that_file_with_its_folder_as_the_repository(
    tmp_path: Path,
) -> None:
    write(tmp_path, "ignored:\n  script: x\n")
    write(tmp_path, "job:\n  script: x\n", name="extra.yml")
    write(tmp_path, "include:\n  - local: extra.yml\n", name="other-ci.yml")
    code, report = lint_json(str(tmp_path / "other-ci.yml"), "--branch", "main")
    assert code == 0
    assert report["file"] == "other-ci.yml"
    assert [j["name"] for j in report["jobs"]] == ["job"]  # include resolved beside it


def test_directory_without_a_pipeline_file_is_an_error(tmp_path: Path) -> None:
    code, report = lint_json(str(tmp_path))
    assert code == 1
    assert report["problems"][0]["severity"] == "error"
    assert "no pipeline file" in report["problems"][0]["message"]


# --- options reaching the rules --------------------------------------------------------------


def test_branch_and_tag_reach_the_rules(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, stable = lint_json(str(tmp_path), "--branch", "stable")
    assert jobs_by_name(stable)["release"]["when"] == "on_success"
    _, tagged = lint_json(str(tmp_path), "--tag", "v1.0")
    release = jobs_by_name(tagged)["release"]
    assert (release["when"], release["allow_failure"]) == ("manual", False)


def test_source_reaches_the_rules(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, pushed = lint_json(str(tmp_path), "--branch", "main")
    _, scheduled = lint_json(str(tmp_path), "--branch", "main", "--source", "schedule")
    assert jobs_by_name(pushed)["nightly"]["when"] == "never"
    assert jobs_by_name(scheduled)["nightly"]["when"] == "on_success"


def test_var_reaches_the_rules_and_repeats(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        job:
          script: make
          rules:
            - if: $A == "1" && $B == "x=y"
        """,
    )
    _, both = lint_json(str(tmp_path), "--branch", "main", "--var", "A=1", "--var", "B=x=y")
    _, one = lint_json(str(tmp_path), "--branch", "main", "--var", "A=1")
    assert jobs_by_name(both)["job"]["when"] == "on_success"  # value split at the first "="
    assert jobs_by_name(one)["job"]["when"] == "never"


def test_changed_reaches_rules_changes(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    _, unknown = lint_json(str(tmp_path), "--branch", "main")
    _, docs = lint_json(str(tmp_path), "--branch", "main", "--changed", "docs/index.md")
    _, code = lint_json(
        str(tmp_path), "--branch", "main", "--changed", "src/a.c", "--changed", "src/b.c"
    )
    # without --changed the changed files are unknown, and GitLab counts `changes` as true
    assert jobs_by_name(unknown)["docs"]["when"] == "on_success"
    assert jobs_by_name(docs)["docs"]["when"] == "on_success"
    assert jobs_by_name(code)["docs"]["when"] == "never"


# --- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "xml"],
        ["--var", "NO_EQUALS_SIGN"],
        ["--var", "=value"],
        ["--source", "carrier-pigeon"],
        ["--branch", "main", "--tag", "v1"],
        ["does/not/exist"],
    ],
    ids=["format", "var-without-equals", "var-without-name", "source", "branch-and-tag", "path"],
)
def test_usage_errors_exit_two(tmp_path: Path, args: list[str]) -> None:
    write(tmp_path, PIPELINE)
    path_given = args[0] == "does/not/exist"
    full = [str(tmp_path / args[0])] if path_given else [str(tmp_path), *args]
    result = CliRunner().invoke(app, ["lint", *full])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""  # nothing a script could mistake for a report


# --- text output -----------------------------------------------------------------------------


def test_text_lists_jobs_under_their_stages(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    code, out = lint(str(tmp_path), "--tag", "v1")
    assert code == 0
    assert "\x1b[" not in out  # not a terminal: no colour
    lines = out.splitlines()
    # allow_failure is shown for people, in no fixed notation: checked apart
    lint_line, docs_line = lines[3], lines[4]
    assert lint_line.startswith("  lint  allow_failure: ")
    assert "3" in lint_line
    assert "4" in lint_line
    assert docs_line.startswith("  docs  allow_failure: ")
    assert lines[:3] + lines[5:] == [
        "build",
        "  build 1/2",
        "  build 2/2",
        "  nightly  when: never",
        "test",
        "  test  needs: [build 1/2, build 2/2]",
        "  quick  needs: []",
        "deploy",
        "  release  when: manual",
        ".gitlab-ci.yml: valid, 0 error(s), 0 warning(s)",
    ]


def test_text_shows_each_problem_with_its_place_and_source_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        stages: [build]
        compile:
          stage: build
          script: make
        check:
          stage: verify
          script: make check
          when: sometimes
        """,
    )
    code, out = lint(str(tmp_path), "--branch", "main")
    assert code == 1
    lines = out.splitlines()
    stage = lines.index(
        "error: .gitlab-ci.yml:6:10: job 'check': stage 'verify' is not defined; "
        "stages are .pre, build, .post"
    )
    assert lines[stage + 1] == "     6 |   stage: verify"
    assert lines[stage + 2] == "       |          ^"  # under column 10, where `verify` starts
    when = next(i for i, line in enumerate(lines) if line.startswith("error: .gitlab-ci.yml:8:9:"))
    assert "'sometimes'" in lines[when]
    assert lines[when + 1] == "     8 |   when: sometimes"
    assert lines[when + 2].index("^") == lines[when + 1].index("sometimes")
    assert lines[-1] == ".gitlab-ci.yml: invalid, 2 error(s), 0 warning(s)"


def test_text_says_when_workflow_rules_create_no_pipeline(tmp_path: Path) -> None:
    write(tmp_path, "workflow:\n  rules:\n    - when: never\njob:\n  script: x\n")
    code, out = lint(str(tmp_path), "--branch", "main")
    assert code == 0
    assert out.splitlines()[-1] == (
        ".gitlab-ci.yml: valid, 0 error(s), 0 warning(s); "
        "workflow:rules create no pipeline for this trigger"
    )


# --- as a real process -----------------------------------------------------------------------


def test_process_prints_json_and_exits_zero(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    done = run_process("--format", "json", "--branch", "main", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert report["created"] is True
    assert jobs_by_name(report)["test"]["needs"] == ["build 1/2", "build 2/2"]


def test_process_exits_one_with_errors(tmp_path: Path) -> None:
    write(tmp_path, "job:\n  stage: nowhere\n  script: x\n", name="ci.yml")
    done = run_process("ci.yml", "--branch", "main", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "error: ci.yml:2:10: job 'job': stage 'nowhere' is not defined" in done.stdout
    assert "ci.yml: invalid, 1 error(s), 0 warning(s)" in done.stdout


def test_process_exits_two_on_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path, PIPELINE)
    done = run_process("--format", "yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--format" in done.stderr
