"""extends: resolution, through resolve_config on one file in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ferrous.pipeline_config.problems import ConfigProblem, Problems
from ferrous.pipeline_config.resolve import resolve_config


def _resolve(tmp_path: Path, text: str) -> tuple[dict[str, Any], list[ConfigProblem]]:
    (tmp_path / ".gitlab-ci.yml").write_text(textwrap.dedent(text))
    problems = Problems()
    return resolve_config(tmp_path, ".gitlab-ci.yml", {}, problems), problems.items


def _where(problem: ConfigProblem) -> tuple[str, str, int, int]:
    return problem.path, problem.message, problem.line, problem.column


def test_the_documented_merge_example(tmp_path: Path) -> None:
    # docs/ci/yaml/yaml_optimization.md, "Merge details"
    config, problems = _resolve(
        tmp_path,
        """\
        .only-important:
          variables:
            URL: "http://my-url.internal"
            IMPORTANT_VAR: "the details"
          rules:
            - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
            - if: $CI_COMMIT_BRANCH == "stable"
          tags: [production]
          script: [echo "Hello world!"]
        .in-docker:
          variables:
            URL: "http://docker-url.internal"
          tags: [docker]
          image: alpine
        rspec:
          variables:
            GITLAB: "is-awesome"
          extends:
            - .only-important
            - .in-docker
          script: [rake rspec]
        """,
    )
    assert problems == []
    assert config["rspec"] == {
        "variables": {
            "URL": "http://docker-url.internal",
            "IMPORTANT_VAR": "the details",
            "GITLAB": "is-awesome",
        },
        "rules": [
            {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"},
            {"if": '$CI_COMMIT_BRANCH == "stable"'},
        ],
        "tags": ["docker"],
        "image": "alpine",
        "script": ["rake rspec"],
    }
    assert list(config["rspec"]) == ["variables", "rules", "tags", "script", "image"]
    assert ".only-important" in config  # hidden jobs stay for later stages to ignore


def test_excluding_a_key_with_null_and_keeping_it_with_an_empty_mapping(tmp_path: Path) -> None:
    # docs: "Exclude a key from extends"
    config, problems = _resolve(
        tmp_path,
        """\
        .base:
          script: test
          variables: {VAR1: base var 1}
        test1:
          extends: .base
          variables: {VAR1: test1 var 1, VAR2: test2 var 2}
        test3:
          extends: .base
          variables: {}
        test4:
          extends: .base
          variables: null
        """,
    )
    assert problems == []
    assert config["test1"]["variables"] == {"VAR1": "test1 var 1", "VAR2": "test2 var 2"}
    assert config["test3"]["variables"] == {"VAR1": "base var 1"}
    assert config["test4"]["variables"] is None


def test_multi_level_chains_with_later_parents_winning(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .ancient: {stage: test, variables: {A: ancient, B: ancient}}
        .elder: {extends: .ancient, variables: {B: elder}}
        .after:
          extends: .elder
          script: [after]
          after_script: [after]
        .parent: {script: [parent], before_script: [parent]}
        job:
          extends: [.after, .parent]
        """,
    )
    assert problems == []
    assert config["job"] == {
        "stage": "test",
        "variables": {"A": "ancient", "B": "elder"},
        "script": ["parent"],
        "after_script": ["after"],
        "before_script": ["parent"],
    }
    assert "extends" not in config[".elder"]


def test_merged_values_keep_their_own_positions(tmp_path: Path) -> None:
    config, _ = _resolve(
        tmp_path,
        """\
        .base:
          image: ruby
        job:
          extends: .base
          script: [x]
        """,
    )
    job = config["job"]
    assert (job.where("image").line, job.where("script").line) == (2, 5)
    assert job.pos.line == 4


def _chain(levels: int) -> str:
    lines = [".level1: {script: [x]}\n"]
    lines += [f".level{i}: {{extends: .level{i - 1}}}\n" for i in range(2, levels)]
    lines.append(f"job:\n  extends: .level{levels - 1}\n")
    return "".join(lines)


def test_eleven_levels_are_allowed(tmp_path: Path) -> None:
    config, problems = _resolve(tmp_path, _chain(11))
    assert problems == []
    assert config["job"]["script"] == ["x"]


def test_twelve_levels_are_too_deep_and_named_where_they_start(tmp_path: Path) -> None:
    config, problems = _resolve(tmp_path, _chain(12))
    chain = " -> ".join(["job", *[f".level{i}" for i in range(11, 0, -1)]])
    assert [_where(p) for p in problems] == [
        (
            "jobs.job.extends",
            f"job: nesting too deep in `extends`: {chain} is 12 levels, at most 11 are allowed",
            13,
            12,
        )
    ]
    assert config["job"]["script"] == ["x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "job:\n  extends: [.base, .missing]\n.base: {script: [x]}\n",
            ("jobs.job.extends[1]", "job extends '.missing', which is not defined", 2, 20),
        ),
        (
            "job:\n  extends: .list\n.list: [a, b]\n",
            ("jobs.job.extends", "job: invalid base hashes in `extends` (.list)", 2, 12),
        ),
        (
            "job:\n  extends: {name: .base}\n",
            ("jobs.job.extends", "job: extends should be a job name or a list of job names", 2, 12),
        ),
        (
            "job:\n  extends: [[.base]]\n.base: {}\n",
            (
                "jobs.job.extends[0]",
                "job: extends should be a job name or a list of job names",
                2,
                13,
            ),
        ),
        (
            "job:\n  extends: job\n  script: [x]\n",
            (
                "jobs.job.extends",
                "job: circular dependency detected in `extends` (job -> job)",
                2,
                12,
            ),
        ),
    ],
)
def test_bad_extends_are_errors_naming_job_and_template(
    tmp_path: Path, text: str, expected: tuple[str, str, int, int]
) -> None:
    _, problems = _resolve(tmp_path, text)
    assert [_where(p) for p in problems] == [expected]


def test_a_cycle_through_templates_is_reported_once_and_jobs_still_merge(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .a:
          extends: .b
          script: [a]
        .b:
          extends: .a
          image: b
        job:
          extends: .a
        """,
    )
    assert [_where(p) for p in problems] == [
        ("jobs..b.extends", ".b: circular dependency detected in `extends` (.a -> .b -> .a)", 5, 12)
    ]
    assert config["job"] == {"image": "b", "script": ["a"]}


def test_templates_from_included_files_can_be_extended(tmp_path: Path) -> None:
    (tmp_path / "included.yml").write_text(".template:\n  script:\n    - echo Hello!\n")
    config, problems = _resolve(
        tmp_path, "include: included.yml\nuseTemplate:\n  image: alpine\n  extends: .template\n"
    )
    assert problems == []
    assert config["useTemplate"] == {"script": ["echo Hello!"], "image": "alpine"}
    assert config["useTemplate"].where("script").file == "included.yml"


def test_extends_is_left_alone_outside_jobs(tmp_path: Path) -> None:
    config, _ = _resolve(tmp_path, "variables:\n  extends: not-a-template\njob: {script: [x]}\n")
    assert config["variables"]["extends"] == "not-a-template"
