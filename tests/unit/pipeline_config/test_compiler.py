"""The compiler: rules, only/except, workflow, parallel, needs and graph problems."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from ferrous.domain.statuses import When
from ferrous.pipeline_config.compiler import CompileResult, compile_pipeline, find_pipeline_file
from ferrous.pipeline_config.context import TriggerContext


def compile_text(
    tmp_path: Path, text: str, context: TriggerContext | None = None, name: str = ".gitlab-ci.yml"
) -> CompileResult:
    (tmp_path / name).write_text(textwrap.dedent(text))
    return compile_pipeline(tmp_path, context or TriggerContext(branch="main"))


def errors(result: CompileResult) -> list[str]:
    return [p.message for p in result.problems if p.severity == "error"]


def whens(result: CompileResult) -> dict[str, str]:
    return {j.name: j.when.value for j in result.plan.jobs}


def test_ferrous_file_wins_over_gitlab_file(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("a:\n  script: x\n")
    (tmp_path / ".ferrous.yml").write_text("b:\n  script: x\n")
    assert find_pipeline_file(tmp_path) == ".ferrous.yml"
    result = compile_pipeline(tmp_path, TriggerContext(branch="main"))
    assert [j.name for j in result.plan.jobs] == ["b"]


def test_missing_file_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    result = compile_pipeline(tmp_path, TriggerContext(branch="main"))
    assert result.has_errors
    assert "no pipeline file" in errors(result)[0]


def test_default_stages_and_default_stage(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "a:\n  script: x\nb:\n  stage: build\n  script: x\n")
    assert result.plan.stages == (".pre", "build", "test", "deploy", ".post")
    assert {j.name: j.stage for j in result.plan.jobs} == {"a": "test", "b": "build"}
    assert not result.problems


def test_pre_and_post_are_always_first_and_last(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path, "stages: [.post, one, .pre, two]\na:\n  stage: one\n  script: x\n"
    )
    assert result.plan.stages == (".pre", "one", "two", ".post")


def test_job_in_test_stage_needs_test_stage(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "stages: [build]\na:\n  script: x\n")
    problem = next(p for p in result.problems if p.path == "jobs.a.stage")
    assert "stage 'test' is not defined" in problem.message
    assert (problem.line, problem.column) == (2, 1)


def test_every_problem_is_reported_at_once_with_positions(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        a:
          scirpt: x
        b:
          script: x
          when: never
          needs: [ghost]
          retry: 5
        """,
    )
    found = {(p.path, p.line, p.column) for p in result.problems if p.severity == "error"}
    assert ("jobs.a.scirpt", 2, 3) in found
    assert ("jobs.a.script", 1, 1) in found
    assert ("jobs.b.when", 5, 9) in found
    assert ("jobs.b.needs[0]", 6, 11) in found
    assert ("jobs.b.retry", 7, 10) in found
    assert "did you mean 'script'" in next(
        p.message for p in result.problems if p.path == "jobs.a.scirpt"
    )
    assert not result.plan.created


def test_rules_first_match_wins_and_no_match_is_never(tmp_path: Path) -> None:
    text = """\
    a:
      script: x
      rules:
        - if: $CI_COMMIT_BRANCH == "main"
          when: manual
        - when: always
    b:
      script: x
      rules:
        - if: $CI_COMMIT_TAG
    """
    on_main = compile_text(tmp_path, text)
    assert whens(on_main) == {"a": "manual", "b": "never"}
    # a manual job from rules blocks (allow_failure false), unlike a job-level manual job
    assert on_main.plan.job("a").allow_failure.allowed is False
    on_tag = compile_text(tmp_path, text, TriggerContext(tag="v1"))
    assert whens(on_tag) == {"a": "always", "b": "on_success"}


def test_job_level_manual_defaults_to_allow_failure(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "a:\n  script: x\n  when: manual\n")
    assert result.plan.job("a").allow_failure.allowed is True


def test_rules_variables_allow_failure_and_job_variables_in_if(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        variables: {G: global}
        a:
          variables: {MODE: fast}
          script: x
          rules:
            - if: $MODE == "fast" && $G == "global"
              allow_failure: {exit_codes: [3]}
              variables: {FROM_RULE: "yes"}
        """,
    )
    job = result.plan.job("a")
    assert job.when == When.ON_SUCCESS
    assert job.allow_failure.exit_codes == (3,)
    assert job.variables["FROM_RULE"] == "yes"
    assert job.variables["G"] == "global"


def test_rules_changes_and_exists(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("x")
    text = """\
    docs:
      script: x
      rules:
        - changes: ["docs/**/*"]
    exists:
      script: x
      rules:
        - exists: ["docs/*.md"]
    missing:
      script: x
      rules:
        - exists: ["nothing/*.txt"]
    """
    changed = compile_text(
        tmp_path, text, TriggerContext(branch="main", changed_files=("src/a.py",))
    )
    assert whens(changed) == {"docs": "never", "exists": "on_success", "missing": "never"}
    docs = compile_text(
        tmp_path, text, TriggerContext(branch="main", changed_files=("docs/a/b.md",))
    )
    assert whens(docs)["docs"] == "on_success"
    unknown = compile_text(tmp_path, text, TriggerContext(branch="main"))
    assert whens(unknown)["docs"] == "on_success"  # unknown changes count as changed


@pytest.mark.parametrize(
    ("only", "context", "runs"),
    [
        ("[main]", TriggerContext(branch="main"), True),
        ("[main]", TriggerContext(branch="dev"), False),
        ("[tags]", TriggerContext(tag="v1.0"), True),
        ("[tags]", TriggerContext(branch="main"), False),
        ("[/^release-.*$/]", TriggerContext(branch="release-1"), True),
        ("[/^RELEASE/i]", TriggerContext(branch="release-1"), True),
        ("[schedules]", TriggerContext(branch="main", source="schedule"), True),
        ("[merge_requests]", TriggerContext(branch="main"), False),
        ("{variables: [$DEPLOY]}", TriggerContext(branch="x", variables={"DEPLOY": "1"}), True),
        ("{variables: [$DEPLOY]}", TriggerContext(branch="x"), False),
    ],
)
def test_only(tmp_path: Path, only: str, context: TriggerContext, runs: bool) -> None:
    result = compile_text(tmp_path, f"a:\n  script: x\n  only: {only}\n", context)
    assert not errors(result)
    assert (whens(result)["a"] != "never") is runs


def test_default_only_excludes_merge_request_pipelines(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        "a:\n  script: x\nb:\n  script: x\n  rules: [{when: always}]\n",
        TriggerContext(source="merge_request_event", branch="feature"),
    )
    assert whens(result) == {"a": "never", "b": "always"}


def test_except_excludes_only_when_every_clause_matches(tmp_path: Path) -> None:
    text = "a:\n  script: x\n  except:\n    refs: [main]\n    variables: [$SKIP]\n"
    main = compile_text(tmp_path, text, TriggerContext(branch="main"))
    assert whens(main)["a"] == "on_success"
    skip = compile_text(tmp_path, text, TriggerContext(branch="main", variables={"SKIP": "1"}))
    assert whens(skip)["a"] == "never"


def test_rules_with_only_is_an_error(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "a:\n  script: x\n  rules: [{when: always}]\n  only: [main]\n")
    assert any("only cannot be used together with rules" in m for m in errors(result))


def test_workflow_rules_never_creates_no_pipeline(tmp_path: Path) -> None:
    text = """\
    workflow:
      name: "Pipeline for $CI_COMMIT_REF_NAME"
      rules:
        - if: $CI_COMMIT_BRANCH == "main"
          variables: {DEPLOY_ENV: prod}
        - if: $CI_COMMIT_TAG
          when: never
    a:
      script: x
    """
    main = compile_text(tmp_path, text)
    assert main.plan.created
    assert main.plan.name == "Pipeline for main"
    assert main.plan.job("a").variables["DEPLOY_ENV"] == "prod"
    tag = compile_text(tmp_path, text, TriggerContext(tag="v1"))
    assert not tag.plan.created
    other = compile_text(tmp_path, text, TriggerContext(branch="dev"))
    assert not other.plan.created  # no rule matched
    assert not other.has_errors


def test_trigger_variables_beat_the_file(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        "variables: {A: file}\njob:\n  variables: {A: job}\n  script: x\n",
        TriggerContext(branch="main", variables={"A": "trigger"}),
    )
    assert result.plan.job("job").variables["A"] == "trigger"


def test_inherit_variables(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        variables: {A: a, B: b}
        none:
          inherit: {variables: false}
          script: x
        some:
          inherit: {variables: [B]}
          script: x
        """,
    )
    assert "A" not in result.plan.job("none").variables
    assert "B" not in result.plan.job("none").variables
    assert "CI_COMMIT_SHA" in result.plan.job("none").variables
    assert result.plan.job("some").variables.get("B") == "b"
    assert "A" not in result.plan.job("some").variables


def test_parallel_and_matrix_names_and_node_variables(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        build:
          script: x
          parallel: 3
        test:
          script: x
          parallel:
            matrix:
              - PY: ["3.10", "3.11"]
                OS: linux
              - PY: "3.12"
        """,
    )
    names = [j.name for j in result.plan.jobs]
    assert names == [
        "build 1/3",
        "build 2/3",
        "build 3/3",
        "test: [3.10, linux]",
        "test: [3.11, linux]",
        "test: [3.12]",
    ]
    third = result.plan.job("test: [3.12]")
    assert (third.variables["CI_NODE_INDEX"], third.variables["CI_NODE_TOTAL"]) == ("3", "3")
    assert third.variables["PY"] == "3.12"


def test_unquoted_version_is_a_yaml_11_float(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path, "t:\n  script: x\n  parallel:\n    matrix:\n      - PY: [3.10]\n"
    )
    assert [j.name for j in result.plan.jobs] == ["t: [3.1]"]


def test_matrix_limit(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(15))
    result = compile_text(
        tmp_path,
        f"t:\n  script: x\n  parallel:\n    matrix:\n"
        f"      - A: [{values}]\n        B: [{values}]\n",
    )
    assert any("at most 200" in m for m in errors(result))


def test_needs_expand_parallel_and_select_matrix(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        stages: [build, test]
        build:
          stage: build
          script: x
          parallel:
            matrix:
              - ARCH: [x64, arm]
                OS: [linux, mac]
        all:
          stage: test
          script: x
          needs: [build]
        some:
          stage: test
          script: x
          needs:
            - job: build
              artifacts: false
              parallel:
                matrix:
                  - ARCH: x64
        """,
    )
    assert result.plan.job("all").need_names == (
        "build: [x64, linux]",
        "build: [x64, mac]",
        "build: [arm, linux]",
        "build: [arm, mac]",
    )
    some = result.plan.job("some")
    assert some.need_names == ("build: [x64, linux]", "build: [x64, mac]")
    assert some.needs is not None
    assert all(n.artifacts is False for n in some.needs)


def test_empty_needs_differs_from_no_needs(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "a:\n  script: x\nb:\n  script: x\n  needs: []\n")
    assert result.plan.job("a").needs is None
    assert result.plan.job("b").needs == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:\n  script: x\n  needs: [a]\n", "needs itself"),
        ("a:\n  script: x\n  needs: [ghost]\n", "needs 'ghost', which is not a job"),
        (
            "a:\n  stage: build\n  script: x\n  needs: [b]\nb:\n  script: x\n",
            "which is in a later stage (test)",
        ),
        (
            "a:\n  script: x\n  needs: [b]\nb:\n  script: x\n  rules: [{if: $NOPE}]\n",
            "'b' is not in this pipeline",
        ),
        ("a:\n  script: x\n  needs: [b]\nb:\n  script: x\n  needs: [a]\n", "cycle: a -> b -> a"),
        (
            "a:\n  stage: build\n  script: x\n  dependencies: [b]\nb:\n  script: x\n",
            "depends on 'b', which is in a later stage (test)",
        ),
        ("a:\n  script: x\n  when: delayed\n", "needs start_in"),
        ("a:\n  script: x\n  timeout: forever\n", "should be a duration"),
        ("a:\n  script: [[[[[[[[[[[x]]]]]]]]]]]\n", "up to 10 levels"),
        ("a:\n  script:\n    - echo a: b\n", "needs quotes"),
        ("a:\n  script: x\n  allow_failure: maybe\n", "should be a mapping"),
        ("stages: build\na:\n  script: x\n", "stages should be a list"),
        ("a: just text\n", "should be a mapping with a script"),
        ("a:\n  script: x\n  rules:\n    - if: $A ==\n", "invalid expression"),
        ("a:\n  script: x\n  cache: {key: a/b}\n", "cannot contain '/'"),
        ("a:\n  script: x\n  coverage: 'total (\\d+)'\n", "/regular expression/"),
    ],
)
def test_graph_and_value_errors(tmp_path: Path, text: str, message: str) -> None:
    result = compile_text(tmp_path, text)
    assert any(message in m for m in errors(result)), errors(result)


def test_optional_need_on_excluded_job_is_dropped(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        "a:\n  script: x\n  needs: [{job: b, optional: true}]\n"
        "b:\n  script: x\n  rules: [{if: $NOPE}]\n",
    )
    assert not errors(result)
    assert result.plan.job("a").needs == ()


def test_rules_needs_replace_job_needs(tmp_path: Path) -> None:
    text = """\
    stages: [build, test]
    prod: {stage: build, script: x}
    dev: {stage: build, script: x}
    test:
      stage: test
      script: x
      needs: [dev]
      rules:
        - if: $CI_COMMIT_BRANCH == "main"
          needs: [prod]
        - when: on_success
    """
    assert compile_text(tmp_path, text).plan.job("test").need_names == ("prod",)
    feature = compile_text(tmp_path, text, TriggerContext(branch="feature"))
    assert feature.plan.job("test").need_names == ("dev",)


def test_typed_fields(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        variables: {REF: $CI_COMMIT_REF_SLUG}
        a:
          script: x
          timeout: 1h 30m
          retry: {max: 2, when: [script_failure], exit_codes: 137}
          allow_failure: {exit_codes: 1}
          artifacts:
            {paths: [out/], exclude: [out/*.tmp], when: always, expire_in: 1 week, name: "art-$REF"}
          cache: [{key: "deps-$REF", paths: [.cache]}, {key: {files: [poetry.lock]}, policy: pull}]
          tags: [linux, "$REF"]
          image: {name: "python:$REF"}
          environment: {name: "review/$REF", url: "https://$REF.example"}
          interruptible: true
        """,
        TriggerContext(branch="Feature/X"),
    )
    assert not result.problems
    job = result.plan.job("a")
    assert job.timeout == 5400
    assert (job.retry.max, job.retry.when, job.retry.exit_codes) == (2, ("script_failure",), (137,))
    assert job.allow_failure.exit_codes == (1,)
    assert job.artifacts is not None
    # left for the runner, which knows the job's predefined variables too
    assert job.artifacts.name == "art-$REF"
    assert [c.key for c in job.cache] == ["deps-$REF", "default"]
    assert job.cache[1].key_files == ("poetry.lock",)
    assert job.tags == ("linux", "feature-x")
    assert job.image is not None
    assert job.image.name == "python:feature-x"
    assert job.environment is not None
    assert job.environment.url == "https://feature-x.example"
    assert job.interruptible


def test_unsupported_keywords_warn(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "a:\n  trigger: {project: x/y}\n")
    warnings = [p for p in result.problems if p.severity == "warning"]
    assert any("downstream pipelines are not supported" in p.message for p in warnings)
    assert not errors(result)


def test_same_stage_dependency_and_need_on_one_instance(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        build:
          script: x
          parallel:
            matrix:
              - OS: [linux, win]
        use:
          script: x
          dependencies: [build]
        one:
          script: x
          needs: ["build: [win]"]
        """,
    )
    assert not errors(result)
    assert result.plan.job("use").dependencies == ("build: [linux]", "build: [win]")
    assert result.plan.job("one").need_names == ("build: [win]",)


def test_boolean_variables_become_strings_and_cache_policy_variable(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        a:
          variables: {FLAG: true, POLICY: pull}
          cache: {key: k, policy: $POLICY}
          script: x
        b:
          variables: {POLICY: sometimes}
          cache: {key: k, policy: $POLICY}
          script: x
        """,
    )
    job = result.plan.job("a")
    assert job.variables["FLAG"] == "true"
    assert job.cache[0].policy == "pull"
    assert errors(result) == [
        "job 'b': cache policy '$POLICY' is 'sometimes', not one of pull, push, pull-push"
    ]


def test_trigger_variables_beat_rules_and_matrix_variables(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        """\
        a:
          script: x
          rules: [{variables: {MODE: rule}}]
        b:
          script: x
          parallel:
            matrix:
              - MODE: [matrix]
        """,
        TriggerContext(branch="main", variables={"MODE": "trigger"}),
    )
    assert {j.name: j.variables["MODE"] for j in result.plan.jobs} == {
        "a": "trigger",
        "b: [matrix]": "trigger",
    }


def test_circular_variables_are_an_error_but_self_reference_is_not(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        "a:\n  script: x\n  variables: {A: $B, B: $A, C: $C}\n",
    )
    assert errors(result) == ["job 'a': circular variable reference: A -> B"]


def test_config_path_and_namespace_variables(tmp_path: Path) -> None:
    result = compile_text(
        tmp_path,
        "a:\n  script: x\n",
        TriggerContext(branch="main", project_path="group/sub/app"),
        name=".ferrous.yml",
    )
    variables = result.plan.job("a").variables
    assert variables["CI_CONFIG_PATH"] == ".ferrous.yml"
    assert variables["CI_PROJECT_NAMESPACE"] == "group/sub"
    assert variables["CI_PROJECT_ROOT_NAMESPACE"] == "group"


def test_rules_exists_sees_what_git_sees(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "x.txt").write_text("x")
    (tmp_path / "kept.txt").write_text("x")
    result = compile_text(
        tmp_path,
        """\
        ignored:
          script: x
          rules: [{exists: ["ignored/*.txt"]}]
        kept:
          script: x
          rules: [{exists: ["*.txt"]}]
        """,
    )
    assert whens(result) == {"ignored": "never", "kept": "on_success"}
