"""default:, deprecated global defaults, inherit: and global variables, via resolve_config."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ferrous.pipeline_config.defaults import JobVariables, inherited_variables
from ferrous.pipeline_config.problems import ConfigProblem, Problems
from ferrous.pipeline_config.resolve import resolve_config


def _resolve(tmp_path: Path, text: str) -> tuple[dict[str, Any], list[ConfigProblem]]:
    (tmp_path / ".gitlab-ci.yml").write_text(textwrap.dedent(text))
    problems = Problems()
    return resolve_config(tmp_path, ".gitlab-ci.yml", {}, problems), problems.items


def _where(problem: ConfigProblem) -> tuple[str, str, int, int]:
    return problem.path, problem.message, problem.line, problem.column


DEFAULTS = """\
default:
  image: busybox
  before_script: [echo default before]
  retry: 2
"""


def test_defaults_fill_unset_keys_and_the_job_wins(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        DEFAULTS
        + """\
        plain: {script: [x]}
        own:
          image: ruby
          retry: null
          script: [x]
        .hidden: {script: [x]}
        """.replace("        ", ""),
    )
    assert problems == []
    assert config["plain"] == {
        "script": ["x"],
        "image": "busybox",
        "before_script": ["echo default before"],
        "retry": 2,
    }
    assert config["own"]["image"] == "ruby"
    assert config["own"]["retry"] == 2  # null means unset, so the default applies
    assert config[".hidden"] == {"script": ["x"]}
    assert config["plain"].where("image").line == 2  # copied values point at default:


@pytest.mark.parametrize(
    ("inherit", "expected"),
    [
        ("{default: true}", {"image", "before_script", "retry"}),
        ("{default: false}", set()),
        ("{default: [image, retry]}", {"image", "retry"}),
    ],
)
def test_inherit_default_selects_keywords(tmp_path: Path, inherit: str, expected: set[str]) -> None:
    config, problems = _resolve(tmp_path, DEFAULTS + f"job:\n  inherit: {inherit}\n  script: [x]\n")
    assert problems == []
    assert set(config["job"]) - {"inherit", "script"} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "default:\n  image: a\n  stage: build\njob: {script: [x]}\n",
            ("default.stage", "default config contains unknown keys: stage", 3, 3),
        ),
        (
            "default:\n  image: a\njob:\n  inherit:\n    default: [image, stage]\n  script: [x]\n",
            (
                "jobs.job.inherit.default[1]",
                "inherit:default config contains unknown values: stage (default: can set "
                "after_script, artifacts, before_script, cache, hooks, id_tokens, image, "
                "interruptible, retry, services, tags, timeout)",
                5,
                22,
            ),
        ),
        (
            "job:\n  inherit:\n    default: some\n  script: [x]\n",
            (
                "jobs.job.inherit.default",
                "inherit:default config should be a boolean value or an array of strings",
                3,
                14,
            ),
        ),
        (
            "job:\n  inherit:\n    defaults: false\n  script: [x]\n",
            ("jobs.job.inherit.defaults", "inherit config contains unknown keys: defaults", 3, 5),
        ),
        (
            "job:\n  inherit: false\n  script: [x]\n",
            ("jobs.job.inherit", "inherit config should be a hash", 2, 12),
        ),
        (
            "default: [image]\njob: {script: [x]}\n",
            ("default", "default config should be a hash", 1, 10),
        ),
    ],
)
def test_bad_default_and_inherit_are_errors(
    tmp_path: Path, text: str, expected: tuple[str, str, int, int]
) -> None:
    _, problems = _resolve(tmp_path, text)
    assert [_where(p) for p in problems] == [expected]


def test_deprecated_globals_act_as_defaults_and_default_wins(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        image: old
        services: [postgres]
        before_script: [echo old]
        default:
          image: new
        job: {script: [x]}
        """,
    )
    assert config["job"]["image"] == "new"
    assert config["job"]["services"] == ["postgres"]
    assert config["job"]["before_script"] == ["echo old"]
    assert [(p.severity, p.path, p.line) for p in problems] == [("warning", "image", 1)]


VARIABLES = """\
variables:
  A: global a
  B: global b
  C: global c
"""


@pytest.mark.parametrize(
    ("job", "expected", "inherited"),
    [
        ("variables: {B: own}", {"A": "global a", "B": "own", "C": "global c"}, {"A", "C"}),
        ("inherit: {variables: false}\n  variables: {B: own}", {"B": "own"}, set()),
        ("inherit: {variables: [A]}", {"A": "global a"}, {"A"}),
        ("variables: null", {"A": "global a", "B": "global b", "C": "global c"}, {"A", "B", "C"}),
    ],
)
def test_global_variables_merge_under_the_jobs_own(
    tmp_path: Path, job: str, expected: dict[str, str], inherited: set[str]
) -> None:
    config, problems = _resolve(tmp_path, VARIABLES + f"job:\n  {job}\n  script: [x]\n")
    assert problems == []
    assert config["job"]["variables"] == expected
    assert inherited_variables(config["job"]) == inherited
    assert config["variables"] == {"A": "global a", "B": "global b", "C": "global c"}


def test_a_job_without_inherited_variables_keeps_its_own_mapping(tmp_path: Path) -> None:
    config, _ = _resolve(tmp_path, "job:\n  variables: {X: '1'}\n  script: [x]\n")
    assert not isinstance(config["job"]["variables"], JobVariables)
    assert inherited_variables(config["job"]) == frozenset()


def test_a_job_variable_replaces_a_global_one_whole(tmp_path: Path) -> None:
    config, _ = _resolve(
        tmp_path,
        "variables:\n  V: {value: g, description: global, expand: false}\n"
        "job:\n  variables:\n    V: {value: j}\n  script: [x]\n",
    )
    assert config["job"]["variables"] == {"V": {"value": "j"}}


def test_inheriting_an_unknown_global_variable_is_a_warning(tmp_path: Path) -> None:
    _, problems = _resolve(
        tmp_path, VARIABLES + "job:\n  inherit:\n    variables: [A, NOPE]\n  script: [x]\n"
    )
    assert [(p.severity, p.path, p.message) for p in problems] == [
        (
            "warning",
            "jobs.job.inherit.variables",
            "inherit:variables names NOPE, which is not a global variable",
        )
    ]


def test_inherited_values_are_shared_not_copied_per_job(tmp_path: Path) -> None:
    config, _ = _resolve(tmp_path, DEFAULTS + "a: {script: [x]}\nb: {script: [y]}\n")
    assert config["a"]["before_script"] is config["b"]["before_script"]
    assert config["a"] is not config["b"]
