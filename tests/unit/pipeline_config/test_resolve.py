"""resolve_config as a whole: the root file, nested-list flattening, positions and speed."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ferrous.pipeline_config.problems import ConfigProblem, Problems
from ferrous.pipeline_config.resolve import resolve_config
from ferrous.pipeline_config.yaml_source import YMap, YSeq


def _resolve(tmp_path: Path, text: str) -> tuple[YMap, list[ConfigProblem]]:
    (tmp_path / ".gitlab-ci.yml").write_text(textwrap.dedent(text))
    problems = Problems()
    return resolve_config(tmp_path, ".gitlab-ci.yml", {}, problems), problems.items


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "the pipeline file must be a mapping of keys at top level (it is a YSeq)"),
        ("just text\n", "the pipeline file must be a mapping of keys at top level (it is a str)"),
        ("# nothing\n", "the pipeline file must be a mapping of keys at top level (it is empty)"),
        ("{}\n", "the pipeline file must be a mapping of keys at top level (it is empty)"),
    ],
)
def test_a_root_that_is_not_a_mapping_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    config, problems = _resolve(tmp_path, text)
    assert [(p.message, p.file, p.line, p.column) for p in problems] == [
        (message, ".gitlab-ci.yml", 1, 1)
    ]
    assert config == {}


def test_a_missing_root_file_is_an_error(tmp_path: Path) -> None:
    problems = Problems()
    config = resolve_config(tmp_path, "ci/pipeline.yml", {}, problems)
    assert config == {}
    assert [p.message for p in problems.items] == [
        "`ci/pipeline.yml` does not exist in the repository"
    ]


def test_a_yaml_syntax_error_is_reported_once(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, "job: [unclosed\n")
    assert len(problems) == 1
    assert problems[0].message.startswith("invalid YAML")


def test_text_lints_a_file_outside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "shared.yml").write_text(".t: {script: [from repo]}\n")
    problems = Problems()
    config = resolve_config(
        tmp_path,
        "/elsewhere/pipeline.yml",
        {},
        problems,
        text="include: shared.yml\njob: {extends: .t}\n",
    )
    assert problems.items == []
    assert config["job"]["script"] == ["from repo"]
    assert config.where_key("job").file == "elsewhere/pipeline.yml"


def test_include_and_spec_are_removed_and_everything_else_kept(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("a: {script: [a]}\n")
    config, problems = _resolve(
        tmp_path,
        """\
        spec:
          inputs:
            x: {default: '1'}
        ---
        include: a.yml
        stages: [build]
        workflow: {rules: [{when: always}]}
        .template: {script: [t]}
        job: {script: [j]}
        """,
    )
    assert problems == []
    assert list(config) == ["a", "stages", "workflow", ".template", "job"]


def test_lists_gitlab_flattens_are_flat_and_others_are_not(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .steps: &steps [one, two]
        default:
          before_script: [[setup], [more]]
        workflow:
          rules: [[{if: $A}], {when: always}]
        job:
          script: [*steps, [three, [four]]]
          after_script: [[a]]
          rules: [[{if: $X}, [{when: never}]]]
          needs: [[build], test]
          cache: [[{key: k}]]
          hooks: {pre_get_sources_script: [[hook]]}
          tags: [[nested]]
          services: [[db]]
        """,
    )
    assert problems == []
    job = config["job"]
    assert job["script"] == ["one", "two", "three", "four"]
    assert job["after_script"] == ["a"]
    assert job["rules"] == [{"if": "$X"}, {"when": "never"}]
    assert job["needs"] == ["build", "test"]
    assert job["cache"] == [{"key": "k"}]
    assert job["hooks"]["pre_get_sources_script"] == ["hook"]
    assert job["before_script"] == ["setup", "more"]
    assert job["tags"] == [["nested"]]
    assert job["services"] == [["db"]]
    assert config["workflow"]["rules"] == [{"if": "$A"}, {"when": "always"}]
    assert config["default"]["before_script"] == ["setup", "more"]
    assert config[".steps"] == ["one", "two"]
    script = job["script"]
    assert isinstance(script, YSeq)
    assert [p.line for p in script.item_pos] == [1, 1, 7, 7]


def test_scripts_nested_more_than_ten_levels_are_errors_everywhere_gitlab_checks(
    tmp_path: Path,
) -> None:
    deep = "[" * 11 + "x" + "]" * 11
    _, problems = _resolve(
        tmp_path,
        f"before_script: {deep}\ndefault:\n  after_script: {deep}\n"
        f"job:\n  script: {deep}\n.hidden:\n  script: {deep}\n",
    )
    # reported once where written: jobs get default values already flattened
    assert [(p.path, p.line) for p in problems] == [
        ("default.after_script", 3),
        ("jobs.job.script", 5),
        ("before_script", 1),
    ]
    assert all("up to 10 levels deep (it is 11 levels deep)" in p.message for p in problems)


def test_anchored_jobs_do_not_share_changes(tmp_path: Path) -> None:
    config, _ = _resolve(
        tmp_path,
        """\
        default: {image: alpine}
        .t: &t
          script: [[a], b]
        job: *t
        """,
    )
    assert config["job"]["script"] == ["a", "b"]
    assert config["job"]["image"] == "alpine"
    assert config[".t"] == {"script": [["a"], "b"]}


def _many_jobs(count: int) -> str:
    lines = [
        "stages: [build, test, deploy]",
        "variables: {GLOBAL_A: a, GLOBAL_B: b}",
        "default: {image: 'alpine:3.20', before_script: [echo setup], tags: [docker]}",
        ".base: {retry: 1, script: [echo base], variables: {BASE: '1'}}",
        ".snippets: {prep: [echo one, echo two]}",
    ]
    for i in range(count):
        lines += [
            f"job-{i}:",
            "  extends: .base",
            f"  stage: {('build', 'test', 'deploy')[i % 3]}",
            f"  variables: {{N: '{i}'}}",
            "  script:",
            "    - !reference [.snippets, prep]",
            f"    - echo job {i}",
            "  rules: [{if: $CI_COMMIT_BRANCH == 'main'}]",
            "  artifacts: {paths: [out/]}",
        ]
    return "\n".join(lines) + "\n"


def test_a_500_job_file_resolves_quickly(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(_many_jobs(500))
    best = float("inf")
    config: dict[str, Any] = {}
    for _ in range(3):
        problems = Problems()
        start = time.perf_counter()
        config = resolve_config(tmp_path, ".gitlab-ci.yml", {}, problems)
        best = min(best, time.perf_counter() - start)
        assert problems.items == []
    assert config["job-499"]["script"] == ["echo one", "echo two", "echo job 499"]
    assert config["job-499"]["variables"] == {
        "GLOBAL_A": "a",
        "GLOBAL_B": "b",
        "BASE": "1",
        "N": "499",
    }
    # About 0.07 s on a loaded 2-core machine, two thirds of it YAML loading. The bound is
    # loose so that a shared CI runner does not flake, but catches anything quadratic.
    assert best < 0.5
