"""!reference resolution, through resolve_config on one file in tmp_path."""

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


def test_references_take_scalars_maps_and_lists(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .vars:
          variables: {URL: http://x, IMPORTANT: details}
          tags: [docker]
        .image: alpine:3
        job:
          image: !reference [.image]
          variables:
            MY_VAR: !reference [.vars, variables, IMPORTANT]
          tags: !reference [.vars, tags]
          script: [echo]
        all-vars:
          variables: !reference [.vars, variables]
          script: [echo]
        """,
    )
    assert problems == []
    assert config["job"]["image"] == "alpine:3"
    assert config["job"]["variables"] == {"MY_VAR": "details"}
    assert config["job"]["tags"] == ["docker"]
    assert config["all-vars"]["variables"] == {"URL": "http://x", "IMPORTANT": "details"}


def test_a_list_reference_inside_a_list_nests_except_where_gitlab_flattens(
    tmp_path: Path,
) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .base:
          script: [one, two]
          tags: [a]
          rules: [{if: $A}]
        job:
          script: [!reference [.base, script], three]
          tags: [!reference [.base, tags], b]
          rules: [!reference [.base, rules], {when: never}]
        """,
    )
    assert problems == []
    job = config["job"]
    assert job["script"] == ["one", "two", "three"]
    assert job["rules"] == [{"if": "$A"}, {"when": "never"}]
    # GitLab keeps the nesting elsewhere (and rejects it when it validates tags)
    assert job["tags"] == [["a"], "b"]


def test_references_resolve_through_chains_and_keep_target_positions(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .one:
          - echo one
        .two:
          - !reference [.one]
          - echo two
        .alias: !reference [.two]
        job:
          script:
            - !reference [.alias]
            - echo three
        """,
    )
    assert problems == []
    script = config["job"]["script"]
    assert script == ["echo one", "echo two", "echo three"]
    assert [(p.line, p.column) for p in script.item_pos] == [(2, 5), (5, 5), (10, 7)]


def test_a_reference_sees_keys_a_template_inherits_through_extends(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .defaults:
          variables: {FOO: foo}
        .wrapper:
          variables: !reference [.defaults, variables]
        .variables:
          extends: .wrapper
        job:
          variables: !reference [.variables, variables]
          script: [echo]
        """,
    )
    assert problems == []
    assert config["job"]["variables"] == {"FOO": "foo"}


def test_extends_sees_an_unresolved_reference_as_a_value_the_child_replaces(
    tmp_path: Path,
) -> None:
    # GitLab runs Extendable before the tag resolver: the child's own mapping replaces the
    # parent's (still unresolved) reference wholesale instead of merging with its target.
    config, problems = _resolve(
        tmp_path,
        """\
        .some:
          variables: {HESTHEST: ponypony}
        .something:
          variables: !reference [.some, variables]
        job:
          extends: .something
          variables: {NICENESS: byrdalos}
          script: [echo]
        other:
          extends: .something
          script: [echo]
        """,
    )
    assert problems == []
    assert config["job"]["variables"] == {"NICENESS": "byrdalos"}
    assert config["other"]["variables"] == {"HESTHEST": "ponypony"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "job:\n  script:\n    - !reference [.missing, script]\n",
            ("jobs.job.script[0]", "!reference [.missing, script] could not be found", 3, 7),
        ),
        (
            ".t: {script: [a]}\njob:\n  script: !reference [.t, before_script]\n",
            ("jobs.job.script", "!reference [.t, before_script] could not be found", 3, 11),
        ),
        (
            ".t: {allow_failure: false}\njob:\n  allow_failure: !reference [.t, allow_failure]\n",
            ("jobs.job.allow_failure", "!reference [.t, allow_failure] could not be found", 3, 18),
        ),
        (
            ".t: {script: [a]}\njob:\n  script: !reference [.t, script, deeper]\n",
            ("jobs.job.script", "!reference [.t, script, deeper] could not be found", 3, 11),
        ),
        (
            "variables:\n  A: !reference [variables, A]\n",
            ("variables.A", "!reference circular chain detected [variables, A]", 2, 6),
        ),
        (
            "job:\n  script:\n    - !reference [job, script]\n",
            ("jobs.job.script[0]", "!reference circular chain detected [job, script]", 3, 7),
        ),
    ],
)
def test_broken_references_are_errors_at_the_tag(
    tmp_path: Path, text: str, expected: tuple[str, str, int, int]
) -> None:
    _, problems = _resolve(tmp_path, text)
    assert [_where(p) for p in problems] == [expected]


def test_an_indirect_cycle_is_reported_once(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        """\
        .a: !reference [.b]
        .b: !reference [.c, x]
        .c:
          x: !reference [.a]
        job: {script: [echo]}
        """,
    )
    assert [p.message for p in problems] == ["!reference circular chain detected [.b]"]
    assert config["job"]["script"] == ["echo"]


def test_a_reference_to_a_mapping_that_holds_it_is_circular(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, ".t:\n  inner:\n    self: !reference [.t]\n")
    assert [_where(p) for p in problems] == [
        ("jobs..t.inner.self", "!reference circular chain detected [.t]", 3, 11)
    ]


def _chain(levels: int) -> str:
    lines = [".script1:\n  - echo test\n"]
    lines += [f".script{i}:\n  - !reference [.script{i - 1}]\n" for i in range(2, levels)]
    lines.append(f"test:\n  script:\n    - !reference [.script{levels - 1}]\n")
    return "".join(lines)


def test_references_nested_ten_levels_deep_in_a_script_are_flattened(tmp_path: Path) -> None:
    config, problems = _resolve(tmp_path, _chain(10))
    assert problems == []
    assert config["test"]["script"] == ["echo test"]


def test_an_eleventh_level_of_nested_references_in_a_script_is_an_error(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, _chain(11))
    assert [_where(p) for p in problems] == [
        (
            "jobs.test.script",
            "script config should be a string or a nested array of strings up to 10 levels "
            "deep (it is 11 levels deep)",
            23,
            5,
        )
    ]


def test_hidden_jobs_keep_their_nested_lists(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path, ".a: {script: [x]}\n.b:\n  script: [!reference [.a, script], y]\n"
    )
    assert problems == []
    assert config[".b"]["script"] == [["x"], "y"]


def test_references_into_included_files_work(tmp_path: Path) -> None:
    (tmp_path / "setup.yml").write_text(".setup:\n  script: [echo creating]\n")
    config, problems = _resolve(
        tmp_path,
        """\
        include: setup.yml
        test:
          script:
            - !reference [.setup, script]
            - echo running
        """,
    )
    assert problems == []
    assert config["test"]["script"] == ["echo creating", "echo running"]
    assert config["test"]["script"].item_pos[0].file == "setup.yml"
