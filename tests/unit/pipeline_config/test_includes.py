"""include: resolution, checked through resolve_config on small repositories in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ferrous.pipeline_config.problems import ConfigProblem, Problems
from ferrous.pipeline_config.resolve import resolve_config


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def _resolve(
    tmp_path: Path, files: dict[str, str], variables: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[ConfigProblem]]:
    problems = Problems()
    config = resolve_config(_repo(tmp_path, files), ".gitlab-ci.yml", variables or {}, problems)
    return config, problems.items


def _only(problems: list[ConfigProblem]) -> ConfigProblem:
    assert len(problems) == 1, problems
    return problems[0]


JOB = "job:\n  script: [echo root]\n"


@pytest.mark.parametrize(
    "include",
    [
        "include: a.yml\n",
        "include: /a.yml\n",
        "include: [a.yml]\n",
        "include:\n  local: a.yml\n",
        "include:\n  - local: /a.yml\n",
    ],
)
def test_every_form_of_local_include_merges_the_file(tmp_path: Path, include: str) -> None:
    config, problems = _resolve(
        tmp_path, {".gitlab-ci.yml": include + JOB, "a.yml": "from-a:\n  script: [echo a]\n"}
    )
    assert problems == []
    assert list(config) == ["from-a", "job"]
    assert "include" not in config


def test_included_files_merge_in_order_and_the_including_file_wins(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": """\
                include: [a.yml, b.yml]
                variables: {C: root}
                job:
                  script: [echo root]
                  variables: {J: root}
            """,
            "a.yml": """\
                variables: {A: a, B: a, C: a}
                job:
                  tags: [a]
                  script: [echo a, echo a2]
                  variables: {K: a}
            """,
            "b.yml": """\
                variables: {B: b}
                job:
                  tags: [b]
            """,
        },
    )
    assert problems == []
    assert config["variables"] == {"A": "a", "B": "b", "C": "root"}
    job = config["job"]
    # hashes merge key by key; lists are replaced wholesale, by later files and by the root
    assert job["variables"]["K"] == "a"
    assert job["variables"]["J"] == "root"
    assert job["tags"] == ["b"]
    assert job["script"] == ["echo root"]


def test_merged_values_keep_the_position_of_the_file_they_came_from(tmp_path: Path) -> None:
    config, _ = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: ci/a.yml\n" + JOB,
            "ci/a.yml": "\n\nfrom-a:\n  script: [echo a]\n",
        },
    )
    where = config.where_key("from-a")
    assert (where.file, where.line, where.column) == ("ci/a.yml", 3, 1)
    assert config["from-a"].where("script").file == "ci/a.yml"
    assert config.where_key("job").file == ".gitlab-ci.yml"


def test_nested_includes_are_relative_to_the_repository_root(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: ci/a.yml\n" + JOB,
            "ci/a.yml": "include: ci/b.yml\nfrom-a: {script: [a]}\n",
            "ci/b.yml": "from-b: {script: [b]}\n",
        },
    )
    assert problems == []
    assert list(config) == ["from-b", "from-a", "job"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("configs/*.yml", ["a", "b"]),
        ("configs/**.yml", ["a", "b", "deep", "sub"]),
        ("configs/**/*.yml", ["deep", "sub"]),
    ],
)
def test_wildcards_match_as_gitlab_documents_in_tree_order(
    tmp_path: Path, pattern: str, expected: list[str]
) -> None:
    files = {
        ".gitlab-ci.yml": f"include: '{pattern}'\n",
        "configs/b.yml": "b: {script: [b]}\n",
        "configs/a.yml": "a: {script: [a]}\n",
        "configs/sub/s.yml": "sub: {script: [s]}\n",
        "configs/sub/deeper/d.yml": "deep: {script: [d]}\n",
        "configs/notes.txt": "not yaml",
    }
    config, problems = _resolve(tmp_path, files)
    assert problems == []
    assert list(config) == expected


def test_a_wildcard_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, {".gitlab-ci.yml": "include:\n  - local: nope/*.yml\n" + JOB})
    problem = _only(problems)
    assert problem.message == "include:local `nope/*.yml` matches no files"
    assert (problem.path, problem.line, problem.column) == ("include[0].local", 2, 12)


@pytest.mark.parametrize(
    ("files", "message", "line", "column", "path"),
    [
        ({}, "Local file `missing.yml` does not exist!", 2, 5, "include[0]"),
        (
            {"missing.yml": "# only a comment\n"},
            "Local file `missing.yml` is empty!",
            2,
            5,
            "include[0]",
        ),
        (
            {"missing.yml": "- a list\n"},
            "Included file `missing.yml` must hold a mapping of keys at top level (it is a YSeq)",
            2,
            5,
            "include[0]",
        ),
    ],
)
def test_unusable_local_files_are_errors_at_the_include(
    tmp_path: Path, files: dict[str, str], message: str, line: int, column: int, path: str
) -> None:
    config, problems = _resolve(
        tmp_path, {".gitlab-ci.yml": "include:\n  - missing.yml\n" + JOB, **files}
    )
    problem = _only(problems)
    assert (problem.message, problem.line, problem.column, problem.path) == (
        message,
        line,
        column,
        path,
    )
    assert problem.file == ".gitlab-ci.yml"
    assert list(config) == ["job"]


def test_a_path_outside_the_repository_is_never_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (tmp_path / "secret.yml").write_text("stolen: {script: [x]}\n")
    problems = Problems()
    config = resolve_config(
        _repo(repo, {".gitlab-ci.yml": "include: ../secret.yml\n" + JOB}),
        ".gitlab-ci.yml",
        {},
        problems,
    )
    assert "stolen" not in config
    assert _only(problems.items).message == "Local file `../secret.yml` does not exist!"


def test_a_file_without_yaml_extension_is_refused(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, {".gitlab-ci.yml": "include: a.txt\n" + JOB, "a.txt": "a: 1"})
    assert _only(problems).message == "Included file `a.txt` does not have YAML extension!"


def test_an_include_loop_is_reported_where_it_closes(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: a.yml\n" + JOB,
            "a.yml": "include: b.yml\na: {script: [a]}\n",
            "b.yml": "b: {script: [b]}\ninclude:\n  - local: ./a.yml\n",
        },
    )
    problem = _only(problems)
    assert problem.message == "include loop: .gitlab-ci.yml -> a.yml -> b.yml -> a.yml"
    assert (problem.file, problem.line, problem.column, problem.path) == (
        "b.yml",
        3,
        12,
        "include[0].local",
    )
    assert list(config) == ["b", "a", "job"]


def test_the_root_including_itself_is_a_loop(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, {".gitlab-ci.yml": "include: /.gitlab-ci.yml\n" + JOB})
    assert _only(problems).message == "include loop: .gitlab-ci.yml -> .gitlab-ci.yml"


def test_more_than_150_includes_is_an_error(tmp_path: Path) -> None:
    files = {f"ci/{i:03}.yml": f"job{i}: {{script: [x]}}\n" for i in range(151)}
    files[".gitlab-ci.yml"] = "include: 'ci/*.yml'\n"
    config, problems = _resolve(tmp_path, files)
    problem = _only(problems)
    assert problem.message == "Maximum of 150 nested includes are allowed!"
    assert "job149" in config
    assert "job150" not in config


def test_the_same_file_twice_is_not_a_loop(tmp_path: Path) -> None:
    _, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: [a.yml, b.yml]\n" + JOB,
            "a.yml": "include: c.yml\n",
            "b.yml": "include: c.yml\n",
            "c.yml": "c: {script: [c]}\n",
        },
    )
    assert problems == []


@pytest.mark.parametrize(
    ("rules", "included"),
    [
        ("[{if: '$CI_COMMIT_BRANCH == \"main\"'}]", True),
        ("[{if: '$CI_COMMIT_BRANCH == \"dev\"'}]", False),
        ("[{if: '$CI_COMMIT_BRANCH == \"main\"', when: never}, {when: always}]", False),
        ("[{if: '$CI_COMMIT_BRANCH == \"dev\"', when: never}, {when: always}]", True),
        ("[{exists: [Dockerfile]}]", True),
        ("[{exists: ['**/*.go']}]", True),
        ("[{exists: ['*.go']}]", False),
        ("[{exists: {paths: ['$SRC/main.go']}}]", True),
        ("[{exists: [nothing.txt]}]", False),
        ("[{if: '$CI_COMMIT_BRANCH', exists: [nothing.txt]}]", False),
    ],
)
def test_include_rules_decide_with_pipeline_variables_and_files(
    tmp_path: Path, rules: str, included: bool
) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": f"include:\n  - local: a.yml\n    rules: {rules}\n" + JOB,
            "a.yml": "from-a: {script: [a]}\n",
            "Dockerfile": "FROM scratch\n",
            "src/main.go": "package main\n",
        },
        {"CI_COMMIT_BRANCH": "main", "SRC": "src"},
    )
    assert problems == []
    assert ("from-a" in config) is included


def test_include_rules_ignore_the_files_own_variables(tmp_path: Path) -> None:
    config, _ = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": "variables: {X: '1'}\n"
            "include:\n  - local: a.yml\n    rules: [{if: $X}]\n" + JOB,
            "a.yml": "from-a: {script: [a]}\n",
        },
    )
    assert "from-a" not in config


def test_broken_include_rules_are_errors_and_exclude_the_file(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": """\
                include:
                  - local: a.yml
                    rules:
                      - if: $A = "x"
                  - local: b.yml
                    rules:
                      - when: manual
                        unknown: 1
                job: {script: [x]}
            """,
            "a.yml": "a: {script: [a]}\n",
            "b.yml": "b: {script: [b]}\n",
        },
    )
    assert "a" not in config
    assert "b" not in config
    by_path = {p.path: p for p in problems}
    bad_if = by_path["include[0].rules[0].if"]
    assert bad_if.message.startswith("include:rules:if invalid expression:")
    assert (bad_if.line, bad_if.column) == (4, 13)
    assert by_path["include[1].rules[0].when"].message.startswith(
        "include:rules:rule when unknown value: manual"
    )
    unknown = by_path["include[1].rules[0].unknown"]
    assert unknown.message == "include:rules:rule config contains unknown keys: unknown"
    assert (unknown.line, unknown.column) == (8, 9)


def test_include_rules_changes_counts_as_true_with_a_warning(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": "include:\n  - local: a.yml\n    rules: [{changes: [src/*]}]\n" + JOB,
            "a.yml": "a: {script: [a]}\n",
        },
    )
    assert "a" in config
    assert _only(problems).severity == "warning"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "project: group/repo\n    file: /x.yml",
            'include:project "group/repo" file "/x.yml" is not supported yet: '
            "only include:local is resolved",
        ),
        (
            "project: group/repo\n    ref: v1\n    file: [/x.yml, /y.yml]",
            'include:project "group/repo" file "/x.yml", "/y.yml" ref "v1" is not supported yet: '
            "only include:local is resolved",
        ),
        (
            "template: Auto-DevOps.gitlab-ci.yml",
            'include:template "Auto-DevOps.gitlab-ci.yml" is not supported yet: '
            "only include:local is resolved",
        ),
        (
            "remote: https://example.com/ci.yml",
            'include:remote "https://example.com/ci.yml" is not supported yet: '
            "only include:local is resolved",
        ),
        (
            "component: gitlab.com/org/comp/build@1.0",
            'include:component "gitlab.com/org/comp/build@1.0" is not supported yet: '
            "only include:local is resolved",
        ),
    ],
)
def test_other_include_kinds_are_errors_and_the_rest_is_merged(
    tmp_path: Path, entry: str, message: str
) -> None:
    config, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": f"include:\n  - {entry}\n  - local: a.yml\n" + JOB,
            "a.yml": "a: {script: [a]}\n",
        },
    )
    problem = _only(problems)
    assert problem.message == message
    assert problem.line == 2
    assert problem.path.startswith("include[0].")
    assert list(config) == ["a", "job"]


def test_a_bare_url_is_a_remote_include(tmp_path: Path) -> None:
    _, problems = _resolve(tmp_path, {".gitlab-ci.yml": "include: https://x.test/a.yml\n" + JOB})
    assert _only(problems).message.startswith('include:remote "https://x.test/a.yml"')


def test_malformed_entries_are_errors(tmp_path: Path) -> None:
    _, problems = _resolve(
        tmp_path,
        {
            ".gitlab-ci.yml": """\
                include:
                  - local: a.yml
                    template: b.yml
                  - 42
                  - local: a.yml
                    file: x
                  - local: [a.yml]
                job: {script: [x]}
            """,
            "a.yml": "a: {script: [a]}\n",
        },
    )
    assert [(p.path, p.line) for p in problems] == [
        ("include[0]", 2),
        ("include[1]", 4),
        ("include[2].file", 6),
        ("include[3].local", 7),
    ]


def test_variables_expand_in_local_paths(tmp_path: Path) -> None:
    config, problems = _resolve(
        tmp_path,
        {".gitlab-ci.yml": "include: $DIR/a.yml\n" + JOB, "ci/a.yml": "a: {script: [a]}\n"},
        {"DIR": "ci"},
    )
    assert problems == []
    assert "a" in config


def test_yaml_errors_in_an_included_file_point_into_that_file(tmp_path: Path) -> None:
    _, problems = _resolve(
        tmp_path, {".gitlab-ci.yml": "include: a.yml\n" + JOB, "a.yml": "a: [unclosed\n"}
    )
    assert problems[0].file == "a.yml"
    assert problems[0].message.startswith("invalid YAML")
