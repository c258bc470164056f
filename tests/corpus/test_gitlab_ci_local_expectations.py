"""The compiled plan against gitlab-ci-local's asserted results (``expectations.json``).

Each case of kind ``job_list``, ``expanded_jobs``, ``needs_selection``, ``error``,
``rules_evaluation`` and ``effective_env`` is checked here on the *compiled plan* (jobs, needs,
rules, job environments); the merged-config cases (``preview``, ``effective_job``,
``yaml_semantics``, and the ``!reference``/script-depth errors the merge layer reports) are in
``test_gitlab_ci_local_merge.py``. ``test_every_case_is_checked_somewhere`` keeps the two
files together covering the whole file.

gitlab-ci-local is an emulator; where it departs from GitLab's documented behaviour, these
tests follow GitLab and say so where it happens:

* names: it writes ``build: [1/3]`` and ``test: [foo,dev]``; GitLab names a ``parallel: N``
  job ``build 1/3`` and a matrix job ``test: [foo, dev]`` (values joined with ", "). The
  expected names are translated with ``gitlab_name``;
* error messages: ours name the same job, need or stage at the same path, in other words;
* its ``# @Description`` comments and ``--manual``/``--validate-dependency-chain`` options
  are about its runner, not about the configuration;
* an unset variable prints as ``""`` in its job logs, which is how the expected environments
  record "not set".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ferrous.domain.statuses import When
from ferrous.pipeline_config.compiler import CompileResult, compile_pipeline
from ferrous.pipeline_config.context import TriggerContext
from ferrous.pipeline_config.plan import ExecutionPlan
from ferrous.pipeline_config.problems import ConfigProblem
from tests.conftest import corpus_dir

FIXTURES = Path("gitlab-ci") / "fixtures" / "gitlab-ci-local"
#: gitlab-ci-local runs on a branch; so do we (jobs without rules default to branches/tags).
ON_MAIN = TriggerContext(branch="main")

#: Cases checked by test_gitlab_ci_local_merge.py, on the merged config.
MERGE_LAYER_CASES = {
    ("extends", "effective_job"),
    ("duplicated-keys", "yaml_semantics"),
    ("reference-circular-chain", "error"),
    ("reference", "error"),
    ("script-multidimension", "error"),
}


def _cases() -> list[dict[str, Any]]:
    root = corpus_dir()
    if root is None:
        return []
    data = json.loads((root / FIXTURES / "expectations.json").read_text())
    cases: list[dict[str, Any]] = data["cases"]
    return cases


def _params(kind: str) -> list[Any]:
    if corpus_dir() is None:
        return [pytest.param({}, marks=pytest.mark.skip(reason="real-world corpus not found"))]
    chosen = [c for c in _cases() if c["kind"] == kind]
    chosen = [c for c in chosen if (c["case"], kind) not in MERGE_LAYER_CASES]
    return [pytest.param(c, id=f"{c['case']}/{c.get('file', '')}") for c in chosen]


def _compile(
    corpus: Path, case: str, file: str = ".gitlab-ci.yml", context: TriggerContext = ON_MAIN
) -> CompileResult:
    return compile_pipeline(corpus / FIXTURES / case, context, file=file)


_PARALLEL_NAME = re.compile(r"^(?P<base>.*): \[(?P<index>\d+)/(?P<total>\d+)\]$")
_MATRIX_NAME = re.compile(r"^(?P<base>.*): \[(?P<values>.*)\]$")


def gitlab_name(name: str) -> str:
    """gitlab-ci-local's name of an expanded job -> GitLab's (see the module docstring)."""
    if match := _PARALLEL_NAME.match(name):
        return f"{match['base']} {match['index']}/{match['total']}"
    if match := _MATRIX_NAME.match(name):
        return f"{match['base']}: [{', '.join(match['values'].split(','))}]"
    return name


def test_gitlab_name_translation() -> None:
    assert gitlab_name("test-job: [1/2]") == "test-job 1/2"
    assert gitlab_name("test-job: [foo,dev]") == "test-job: [foo, dev]"
    assert gitlab_name("build-job: [foo]") == "build-job: [foo]"
    assert gitlab_name("pre-job") == "pre-job"


def test_every_case_is_checked_somewhere(corpus: Path) -> None:
    handled_here = {
        "job_list",
        "expanded_jobs",
        "needs_selection",
        "error",
        "rules_evaluation",
        "effective_env",
        "preview+warning",  # the warning here, the preview in the merge test
    }
    for case in _cases():
        key = (case["case"], case["kind"])
        assert case["kind"] in handled_here or key in MERGE_LAYER_CASES, key
    assert len(_cases()) == 28  # the README's count: a new case must be looked at


# --- job_list ------------------------------------------------------------------------------


def _job_table(plan: ExecutionPlan) -> list[tuple[str, str, str, Any, list[str] | None]]:
    return [
        (
            job.name,
            job.stage,
            job.when.value,
            job.allow_failure.to_json(),
            None if job.needs is None else [n.job for n in job.needs],
        )
        for job in plan.jobs
    ]


def _csv_allow_failure(text: str) -> Any:
    """Its ``allowFailure`` column: true/false, or the exit codes as ``[42,137]``."""
    if text in ("true", "false"):
        return text == "true"
    return {"exit_codes": json.loads(text)}


def _csv_needs(text: str) -> list[str] | None:
    """Its ``needs`` column: empty for no `needs:`, ``[]`` for `needs: []`, else ``[a,b]``."""
    if not text:
        return None
    inner = text.removeprefix("[").removesuffix("]")
    return [name for name in inner.split(",") if name]


@pytest.mark.parametrize("spec", _params("job_list"))
def test_job_list(corpus: Path, spec: dict[str, Any]) -> None:
    result = _compile(corpus, spec["case"], spec["file"])
    assert result.problems == []
    plan = result.plan
    if "jobs" in spec:
        expected = [
            (j["name"], j["stage"], j["when"], j["allow_failure"], j["needs"]) for j in spec["jobs"]
        ]
        # gitlab-ci-local lists the file's stages; ours has GitLab's implicit .pre/.post
        assert plan.stages == (".pre", *spec["stages"], ".post")
    else:
        # `name;stage;when;allowFailure;environment;needs`; no job has an environment
        rows = [row.split(";") for row in spec["csv_rows"]]
        expected = [
            (name, stage, when, _csv_allow_failure(allow), _csv_needs(needs))
            for name, stage, when, allow, _environment, needs in rows
        ]
        assert all(job.environment is None for job in plan.jobs)
    # the `description` column comes from gitlab-ci-local's `# @Description` comments, which
    # are not GitLab configuration: not compared
    assert _job_table(plan) == expected


# --- expanded_jobs and needs_selection -----------------------------------------------------


@pytest.mark.parametrize("spec", _params("expanded_jobs"))
def test_expanded_jobs_names_order_and_environment(corpus: Path, spec: dict[str, Any]) -> None:
    result = _compile(corpus, spec["case"], spec["file"])
    assert result.problems == []
    plan = result.plan
    assert [job.name for job in plan.jobs] == [gitlab_name(n) for n in spec["jobs"]]
    for name, env in spec["env"].items():
        job = plan.job(gitlab_name(name))
        # "" is how an unset variable shows in its job log (TIER for `test-job: [beb]`)
        assert {key: job.variables.get(key, "") for key in env} == env, name
        assert (job.node_index, job.node_total) == (
            int(env["CI_NODE_INDEX"]),
            int(env["CI_NODE_TOTAL"]),
        )
    if spec["case"] == "parallel-matrix":
        # the notes: `needs: [build-job, pre-job]` means every build-job instance
        builds = [gitlab_name(n) for n in spec["jobs"] if n.startswith("build-job")]
        for job in plan.jobs:
            if job.base_name == "test-job":
                assert job.need_names == (*builds, "pre-job")


@pytest.mark.parametrize("spec", _params("needs_selection"))
def test_needs_parallel_matrix_selects_instances(corpus: Path, spec: dict[str, Any]) -> None:
    result = _compile(corpus, spec["case"], spec["file"])
    # test-optional-zero selects nothing with `optional: true`: not an error
    assert result.problems == []
    for name, needs in spec["needs_resolve_to"].items():
        assert result.plan.job(name).need_names == tuple(gitlab_name(n) for n in needs), name


# --- error -----------------------------------------------------------------------------------

#: (case, file) -> every error we report, as (path, line, words its message must contain).
#: gitlab-ci-local's wording is in each comment; ours differs, the place and names agree.
ERRORS: dict[tuple[str, str], list[tuple[str, int, list[str]]]] = {
    # "stages: must be an array"
    ("invalid-stages", ".gitlab-ci.yml"): [("stages", 2, ["stages", "list"])],
    # "needs: [test-job] for build-job is in a future stage"
    ("needs-invalid-stage", ".gitlab-ci.yml"): [
        ("jobs.build-job.needs[0]", 9, ["'build-job'", "'test-job'", "later stage"])
    ],
    # "stage:invalid not found for test-job"
    ("stage-not-found", ".gitlab-ci.yml"): [
        ("jobs.test-job.stage", 3, ["'test-job'", "stage 'invalid' is not defined"])
    ],
    # "The pipeline has circular dependencies: self-dependency: job."
    ("self-dependency", ".gitlab-ci.yml"): [
        ("jobs.job.needs[0]", 6, ["'job' needs itself", "self-dependency"])
    ],
    # "needs: [invalid] for test-job could not be found"
    ("needs-unspecified-job", ".gitlab-ci.yml"): [
        ("jobs.test-job.needs[0]", 3, ["'test-job' needs 'invalid'", "not a job"])
    ],
    # "jobs:test-job when:never can only be used in a rules section or workflow:rules"
    ("when", ".gitlab-ci.yml"): [
        ("jobs.test-job.when", 4, ["'test-job'", "when: never", "rules or workflow:rules"])
    ],
    # "test-job must have script specified"
    ("no-script", ".gitlab-ci.yml"): [("jobs.test-job.script", 2, ["'test-job'", "no script"])],
    # four schema errors: empty script, when manual2, junit not a string, unknown `data`
    ("schema-validation", ".gitlab-ci.yml"): [
        ("jobs.test.when", 3, ["one of", "'manual2'"]),
        ("jobs.test.artifacts.reports.junit", 6, ["not a number"]),
        ("jobs.test.script", 7, ["not be empty"]),
        ("jobs.test.data", 8, ["unknown keyword 'data'"]),
    ],
    # "'variables' property type must be object at error1.variables" ... error4
    ("schema-validation", ".gitlab-ci-4-errors.yml"): [
        (f"jobs.error{n}.variables", 5 * n - 1, ["should be a mapping", "boolean"])
        for n in range(1, 5)
    ],
}


def _error_params() -> list[Any]:
    params = _params("error")
    if corpus_dir() is None:
        return params
    return [p for p in params if (p.values[0]["case"], p.values[0]["file"]) in ERRORS]


def test_every_error_case_has_an_expectation(corpus: Path) -> None:
    errors = [c for c in _cases() if c["kind"] == "error"]
    for case in errors:
        key = (case["case"], case["file"])
        assert key in ERRORS or (case["case"], "error") in MERGE_LAYER_CASES, key


@pytest.mark.parametrize("spec", _error_params())
def test_error_names_the_same_thing(corpus: Path, spec: dict[str, Any]) -> None:
    result = _compile(corpus, spec["case"], spec["file"])
    errors = [p for p in result.problems if p.severity == "error"]
    expected = ERRORS[(spec["case"], spec["file"])]
    assert [(p.path, p.line) for p in errors] == [(path, line) for path, line, _ in expected]
    for problem, (_, _, words) in zip(errors, expected, strict=True):
        assert all(word in problem.message for word in words), (problem.message, spec)
    assert not result.plan.created  # an invalid file creates no pipeline


@pytest.mark.parametrize("jobs", [5, 6])
def test_every_schema_error_is_reported_without_truncation(corpus: Path, jobs: int) -> None:
    # the case's notes: gitlab-ci-local stops listing after 5 ("... and 1 more"); we list all
    result = _compile(corpus, "schema-validation", f".gitlab-ci-{jobs}-errors.yml")
    paths = [p.path for p in result.problems if p.severity == "error"]
    assert paths == [f"jobs.error{n}.variables" for n in range(1, jobs + 1)]


def test_null_artifacts_is_a_warning(corpus: Path) -> None:
    # kind "preview+warning": its preview is in the merge test; its warning is
    # "my-job.artifacts is null, ignoring." and ours says the same of the same key
    result = _compile(corpus, "schema-validation", ".gitlab-ci-issue-1277.yml")
    assert [(p.severity, p.path, p.line) for p in result.problems] == [
        ("warning", "jobs.my-job.artifacts", 13)
    ]
    assert "ignored" in result.problems[0].message
    assert result.plan.job("my-job").artifacts is None


# --- rules_evaluation ----------------------------------------------------------------------


def _whens(result: CompileResult) -> dict[str, When]:
    return {job.name: job.when for job in result.plan.jobs}


def _errors(result: CompileResult) -> list[ConfigProblem]:
    return [p for p in result.problems if p.severity == "error"]


def test_every_rules_case_has_a_test(corpus: Path) -> None:
    cases = {c["case"] for c in _cases() if c["kind"] == "rules_evaluation"}
    assert cases == {
        "validate-dependency-chain",
        "never",
        "needs-optional",
        "rules-needs",
        "manual",
        "workflow-rules-variables",
    }


def test_validate_dependency_chain(corpus: Path) -> None:
    spec = next(c for c in _cases() if c["case"] == "validate-dependency-chain")
    scenarios = {json.dumps(s["variables"]): s for s in spec["scenarios"]}

    def run(variables: dict[str, str]) -> CompileResult:
        assert json.dumps(variables) in scenarios  # the scenario is the file's
        context = TriggerContext(branch="main", variables=variables)
        return _compile(corpus, "validate-dependency-chain", context=context)

    everything = run({"RUN_ALL": "true"})  # "valid"
    assert everything.problems == []
    assert everything.plan.created

    # "kaniko-root is when:never, but its needed by alpine-root": GitLab refuses to create
    # the pipeline ("'alpine-root' job needs 'kaniko-root' job, but 'kaniko-root' does not
    # exist in the pipeline"), so this is a compile error for us without any option
    root = run({"RUN_SINGLE": "alpine-root"})
    (error,) = _errors(root)
    assert (error.path, error.line) == ("jobs.alpine-root.needs[0]", 18)
    assert "'alpine-root' needs 'kaniko-root'" in error.message
    assert "not in this pipeline" in error.message

    # "alpine-root is when:never, but its needed by alpine-guest" (its third rule: never)
    guest = run({"RUN_SINGLE": "alpine-guest"})
    assert _whens(guest)["alpine-root"] == When.NEVER
    (error,) = _errors(guest)
    assert (error.path, error.line) == ("jobs.alpine-guest.needs[0]", 8)
    assert "'alpine-guest' needs 'alpine-root'" in error.message

    # "build-job-2 is when:never, but its depended on by broken-dependencies-job": GitLab
    # departs here. Only `needs` are checked when a pipeline is created
    # (Gitlab::Ci::Pipeline::Seed::Build#errors); a `dependencies` entry whose job the rules
    # leave out is simply not downloaded (gitlab-org/gitlab#29907). So the pipeline is
    # created, and we warn about the same two jobs.
    dependencies = run({"TEST_DEPENDENCIES": "true"})
    assert _errors(dependencies) == []
    assert dependencies.plan.created
    (warning,) = dependencies.problems
    assert (warning.severity, warning.path) == (
        "warning",
        "jobs.broken-dependencies-job.dependencies[1]",
    )
    assert "'broken-dependencies-job' depends on 'build-job-2'" in warning.message
    assert dependencies.plan.job("broken-dependencies-job").dependencies == ("build-job-1",)


def test_when_never_rule_removes_the_job(corpus: Path) -> None:
    spec = next(c for c in _cases() if c["case"] == "never")
    result = _compile(corpus, "never", spec["file"])
    assert result.problems == []
    whens = _whens(result)
    assert [name for name, when in whens.items() if when != When.NEVER] == spec["runs"]
    assert [name for name, when in whens.items() if when == When.NEVER] == spec["skipped"]
    # a scalar script is accepted
    assert result.plan.job("test-job").script == ('echo "Test something"',)


def test_optional_need_on_an_excluded_job_is_dropped(corpus: Path) -> None:
    spec = next(c for c in _cases() if c["case"] == "needs-optional")
    result = _compile(corpus, "needs-optional", spec["file"])
    assert result.problems == []
    whens = _whens(result)
    assert [name for name, when in whens.items() if when != When.NEVER] == spec["runs"]
    assert [name for name, when in whens.items() if when == When.NEVER] == spec["skipped"]
    # `needs: [{job: skipped-job, optional: true}]`: an empty list, not "no needs"
    assert result.plan.job("executed-job").needs == ()


def test_rules_needs_replace_the_job_needs(corpus: Path) -> None:
    spec = next(c for c in _cases() if c["case"] == "rules-needs")
    for scenario in spec["scenarios"]:
        # it sets CI_COMMIT_BRANCH as a variable; that is the trigger's branch to GitLab
        branch = scenario["variables"]["CI_COMMIT_BRANCH"]
        result = _compile(corpus, "rules-needs", spec["file"], TriggerContext(branch=branch))
        assert result.problems == []
        assert result.plan.job("test-job").need_names == tuple(scenario["test-job_needs"])


def test_manual_rules_and_rule_variables(corpus: Path) -> None:
    spec = next(c for c in _cases() if c["case"] == "manual")
    result = _compile(corpus, "manual", spec["file"])
    # its "pre-job is when:manual, its needed by test-job, and not specified in --manual" is
    # its runner refusing to run everything at once; on GitLab test-job simply waits for the
    # manual pre-job, which blocks (rules:when:manual defaults to allow_failure: false)
    assert result.problems == []
    assert result.plan.created
    whens = _whens(result)
    assert [name for name, when in whens.items() if when == When.MANUAL] == spec["manual_jobs"]
    for name in spec["manual_jobs"]:
        assert result.plan.job(name).allow_failure.allowed is False
    assert result.plan.job("test-job").need_names == ("pre-job",)
    for name, variables in spec["rule_variables"].items():
        job = result.plan.job(name)
        assert {key: job.variables.get(key) for key in variables} == variables
    assert "VAL" not in result.plan.job("build-job").variables  # the rule's, not global


def test_workflow_rules_variables(corpus: Path) -> None:
    spec = next(c for c in _cases() if c["case"] == "workflow-rules-variables")
    for scenario in spec["scenarios"]:
        result = _compile(corpus, "workflow-rules-variables", scenario["file"])
        assert result.problems == []
        env = result.plan.job("test-job").variables
        if "test-job_env" in scenario:
            assert result.plan.created
            assert {key: env.get(key) for key in scenario["test-job_env"]} == scenario[
                "test-job_env"
            ]
        else:
            # .gitlab-ci-no-match.yml: no workflow rule matches. gitlab-ci-local still runs
            # test-job; GitLab creates no pipeline at all ("if no rules match, the pipeline
            # does not run"). The variable is absent either way.
            assert not result.plan.created
            for key in scenario["test-job_env_excludes"]:
                assert key not in env


# --- effective_env -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", _params("effective_env"))
def test_effective_env_of_the_compiled_jobs(corpus: Path, spec: dict[str, Any]) -> None:
    # the merge test checks the merged config; this is the environment the plan gives each
    # job, where global variables are added after inherit:variables decides
    result = _compile(corpus, spec["case"], spec["file"])
    assert result.problems == []
    for name, expected in spec["jobs"].items():
        env = result.plan.job(name).variables
        ours = {key: value for key, value in env.items() if key.startswith("GCL_TESTS_")}
        if "GCL_TESTS_*" in expected:  # "none inherited (inherit:variables:false)"
            assert ours == {}, name
        else:
            assert ours == expected, name
