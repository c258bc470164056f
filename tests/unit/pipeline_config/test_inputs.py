"""spec:inputs and $[[ inputs.x ]] interpolation, through include:local with inputs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ferrous.pipeline_config.problems import ConfigProblem, Problems
from ferrous.pipeline_config.resolve import resolve_config

TEMPLATE_HEADER = """\
spec:
  inputs:
    name:
    count:
      type: number
      default: 2
    flag:
      type: boolean
      default: false
    items:
      type: array
      default: [a, b]
    env:
      default: dev
      options: [dev, prod]
    version:
      default: v1.0.0
      regex: ^v\\d+\\.\\d+\\.\\d+$
---
"""


def _resolve(
    tmp_path: Path,
    root: str,
    template: str,
    variables: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[ConfigProblem]]:
    (tmp_path / ".gitlab-ci.yml").write_text(textwrap.dedent(root))
    (tmp_path / "t.yml").write_text(textwrap.dedent(template))
    problems = Problems()
    config = resolve_config(tmp_path, ".gitlab-ci.yml", variables or {}, problems)
    return config, problems.items


def _include(inputs: str) -> str:
    return f"include:\n  - local: t.yml\n    inputs: {inputs}\n"


def test_inputs_interpolate_values_and_keys_with_any_spacing(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        _include("{name: web}"),
        TEMPLATE_HEADER + "job-$[[ inputs.name ]]:\n"
        "  script: ['echo $[[inputs.name]] $[[   inputs.name ]]$[[ inputs.name]]']\n",
    )
    assert problems == []
    assert config["job-web"]["script"] == ["echo web webweb"]


def test_a_whole_block_keeps_the_input_type_and_an_embedded_one_becomes_text(
    tmp_path: Path,
) -> None:
    config, problems = _resolve(
        tmp_path,
        _include("{name: x, flag: true, items: [p, q]}"),
        TEMPLATE_HEADER
        + """\
        job:
          interruptible: $[[ inputs.flag ]]
          parallel: $[[ inputs.count ]]
          tags: $[[ inputs.items ]]
          script:
            - echo $[[ inputs.flag ]] $[[ inputs.count ]] $[[ inputs.items ]]
        """,
    )
    assert problems == []
    job = config["job"]
    assert job["interruptible"] is True
    assert job["parallel"] == 2
    assert job["tags"] == ["p", "q"]
    assert job["script"] == ['echo true 2 ["p","q"]']


def test_an_array_input_inside_a_script_is_flattened_like_a_reference(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        _include("{name: x}"),
        TEMPLATE_HEADER + "job:\n  script:\n    - first\n    - $[[ inputs.items ]]\n",
    )
    assert problems == []
    assert config["job"]["script"] == ["first", "a", "b"]


def test_the_same_file_with_different_inputs_is_two_includes(tmp_path: Path) -> None:
    root = """\
    include:
      - local: t.yml
        inputs: {name: one}
      - local: t.yml
        inputs: {name: two, env: prod}
    """
    config, problems = _resolve(
        tmp_path,
        root,
        TEMPLATE_HEADER + "job-$[[ inputs.name ]]:\n  script: ['$[[ inputs.env ]]']\n",
    )
    assert problems == []
    assert config["job-one"]["script"] == ["dev"]
    assert config["job-two"]["script"] == ["prod"]


@pytest.mark.parametrize(
    ("inputs", "path", "message", "line", "column"),
    [
        ("{}", "include[0]", "`name` input: required value has not been provided", 2, 5),
        (
            "{name: x, other: 1}",
            "include[0].inputs",
            "unknown input arguments: other",
            2,
            5,
        ),
        (
            "{name: x, count: many}",
            "include[0].inputs.count",
            "`count` input: provided value is not a number",
            3,
            30,
        ),
        (
            "{name: 5}",
            "include[0].inputs.name",
            "`name` input: provided value is not a string",
            3,
            20,
        ),
        (
            "{name: x, flag: 'yes'}",
            "include[0].inputs.flag",
            "`flag` input: provided value is not a boolean",
            3,
            29,
        ),
        (
            "{name: x, env: test}",
            "include[0].inputs.env",
            "`env` input: `test` cannot be used because it is not in the list of allowed options",
            3,
            28,
        ),
        (
            "{name: x, version: '1.2'}",
            "include[0].inputs.version",
            "`version` input: provided value does not match required RegEx pattern",
            3,
            32,
        ),
    ],
)
def test_bad_inputs_are_errors_at_the_include(
    tmp_path: Path, inputs: str, path: str, message: str, line: int, column: int
) -> None:
    template = TEMPLATE_HEADER + (
        "job:\n  script:\n    - echo $[[ inputs.name ]] $[[ inputs.count ]] $[[ inputs.flag ]]\n"
        "    - echo $[[ inputs.env ]] $[[ inputs.version ]]\n"
    )
    _, problems = _resolve(tmp_path, _include(inputs), template)
    # one problem each: a block naming an input already reported adds none of its own
    assert [(p.path, p.message, p.line, p.column, p.file) for p in problems] == [
        (path, message, line, column, ".gitlab-ci.yml")
    ]


def test_array_options_check_every_item(tmp_path: Path) -> None:
    template = "spec:\n  inputs:\n    targets:\n      type: array\n      options: [a, b]\n---\n"
    ok, ok_problems = _resolve(
        tmp_path, _include("{targets: [a, b]}"), template + "j:\n  script: $[[ inputs.targets ]]\n"
    )
    assert ok_problems == []
    assert ok["j"]["script"] == ["a", "b"]
    _, problems = _resolve(tmp_path, _include("{targets: [a, c]}"), template + "j: {script: [x]}\n")
    assert [p.message for p in problems] == [
        "`targets` input: `c` cannot be used because it is not in the list of allowed options"
    ]


def test_a_default_of_the_wrong_type_points_at_the_spec(tmp_path: Path) -> None:
    template = "spec:\n  inputs:\n    n:\n      type: number\n      default: lots\n---\nj: {}\n"
    _, problems = _resolve(tmp_path, "include: t.yml\n", template)
    assert [(p.path, p.message, p.file, p.line) for p in problems] == [
        ("spec.inputs.n.default", "`n` input: default value is not a number", "t.yml", 5)
    ]


def test_unknown_spec_keys_and_types_are_errors(tmp_path: Path) -> None:
    template = (
        "spec:\n  inputs:\n    n:\n      typ: number\n      default: x\n"
        "    m:\n      type: int\n      default: 1\n---\nj: {}\n"
    )
    _, problems = _resolve(tmp_path, "include: t.yml\n", template)
    assert [(p.path, p.line) for p in problems] == [
        ("spec.inputs.n.typ", 4),
        ("spec.inputs.m.type", 7),
    ]


def test_inputs_for_a_file_without_spec_are_an_error(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path, _include("{name: x}"), "job: {script: ['$[[ inputs.name ]]']}\n"
    )
    assert [p.message for p in problems] == [
        "Given inputs not defined in the `spec` section of the included configuration file"
    ]
    assert config["job"]["script"] == ["$[[ inputs.name ]]"]


def test_an_unknown_interpolation_key_points_at_the_string(tmp_path: Path) -> None:
    _, problems = _resolve(
        tmp_path,
        _include("{name: x}"),
        TEMPLATE_HEADER + "job:\n  script:\n    - echo $[[ inputs.nope ]]\n",
    )
    assert [(p.path, p.message, p.file, p.line, p.column) for p in problems] == [
        ("jobs.job.script[0]", "unknown interpolation key: `nope`", "t.yml", 22, 7)
    ]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("inputs.text | expand_vars", "x-value-$UNSET"),
        ("inputs.text | truncate(2,5)", "$VAR-"),
        ("inputs.text | expand_vars | truncate(0,1)", "x"),
        ("inputs.quoted | posix_escape", "it\\'s\\ a\\ \\$test"),
        ("inputs.empty | posix_escape", "''"),
    ],
)
def test_interpolation_functions(tmp_path: Path, block: str, expected: str) -> None:
    template = (
        "spec:\n  inputs:\n    text:\n      default: x-$VAR-$UNSET\n"
        "    quoted:\n      default: it's a $test\n    empty:\n      default: ''\n---\n"
        f"job:\n  script: ['$[[ {block} ]]']\n"
    )
    config, problems = _resolve(tmp_path, "include: t.yml\n", template, {"VAR": "value"})
    assert problems == []
    assert config["job"]["script"] == [expected]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "inputs.n | expand_vars",
            "invalid input type: expand_vars can only be used with string inputs",
        ),
        ("inputs.s | shout", "no function matching `shout`"),
        ("inputs.s | truncate(1)", "truncate: needs two non-negative whole numbers"),
        ("component.name", "unknown interpolation provided: `component.name`"),
        (
            "inputs.s | posix_escape | posix_escape | posix_escape | posix_escape",
            "too many functions in interpolation block",
        ),
    ],
)
def test_bad_interpolation_blocks_are_errors(tmp_path: Path, block: str, message: str) -> None:
    template = (
        "spec:\n  inputs:\n    n:\n      type: number\n      default: 1\n"
        "    s:\n      default: text\n---\n"
        f"job:\n  script: ['$[[ {block} ]]']\n"
    )
    _, problems = _resolve(tmp_path, "include: t.yml\n", template)
    assert len(problems) == 1
    assert problems[0].message.startswith(message)
    assert problems[0].path == "jobs.job.script[0]"


def test_the_root_file_may_have_a_spec_header_with_defaults(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        "spec:\n  inputs:\n    stage:\n      default: build\n---\n"
        "job:\n  stage: $[[ inputs.stage ]]\n",
        "",
    )
    assert problems == []
    assert config["job"]["stage"] == "build"
    assert "spec" not in config
