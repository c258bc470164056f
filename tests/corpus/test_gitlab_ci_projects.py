"""The compiler against the corpus's real-world projects (``<corpus>/gitlab-ci/<owner>__<repo>``).

Every project compiles, for every kind of trigger, without an exception and into a plan whose
needs point at jobs of that plan. Then, as GitLab would judge them:

* a project whose includes are all local lints clean, except the few whose files are invalid on
  GitLab too (``KNOWN_INVALID``, each with its reason, checked by reading the file);
* a project that includes ``project``/``template``/``remote``/``component`` files, which are not
  fetched, has exactly one ``unresolved-include`` error per such include, and nothing else is an
  error: what the include would have defined (templates, scripts, stages) is a warning.

Which includes a project has is read from its files here (PyYAML, independently of our loader),
so a compiler that lost or invented an include fails the counts.

The last tests pin the shape of three projects (job count, names, stages, needs, rules),
with every expected value taken from reading their files (line numbers in comments).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferrous.domain.statuses import When
from ferrous.pipeline_config.compiler import CompileResult, compile_pipeline
from ferrous.pipeline_config.context import TriggerContext
from ferrous.pipeline_config.problems import MAYBE_FROM_INCLUDES, UNRESOLVED_INCLUDE
from tests.conftest import corpus_dir

PROJECTS = Path("gitlab-ci")
NOT_PROJECTS = frozenset({"fixtures", "schema"})
INCLUDE_KINDS = ("local", "project", "template", "remote", "component", "artifact")

#: One trigger of each kind; `main` is TriggerContext's default branch.
CONTEXTS = {
    "push-default-branch": TriggerContext(branch="main"),
    "push-feature-branch": TriggerContext(branch="feature/x"),
    "tag": TriggerContext(tag="v1.0.0"),
    "merge-request": TriggerContext(
        source="merge_request_event",
        merge_request={
            "CI_MERGE_REQUEST_IID": "1",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/x",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        },
    ),
    "schedule": TriggerContext(source="schedule", branch="main"),
    "web": TriggerContext(source="web", branch="main"),
}

#: Projects whose files GitLab rejects too: every error we expect, as (path, line, words).
KNOWN_INVALID: dict[str, set[tuple[str, int, str]]] = {
    # .gitlab-ci.yml:59 and :66 are `- echo "Building image: ${...}"` and `- echo "Pushing
    # image: ${...}"`: unquoted, the `: ` makes each line a one-key mapping, not a string, and
    # GitLab answers "script config should be a string or a nested array of strings".
    "0FL01__Oxide-Agent": {
        ("jobs.build.script[1]", 59, "not a mapping"),
        ("jobs.build.script[4]", 66, "not a mapping"),
    },
    # .gitlab-ci.yml declares `stages: [build-web-app]` (twice, lines 1 and 22) but its only job
    # says `stage: build` (line 5): GitLab's "build job: chosen stage build does not exist".
    "0LNetworkCommunity__explorer": {("jobs.build.stage", 5, "stage 'build' is not defined")},
}


@dataclass(frozen=True, slots=True)
class IncludeEntry:
    file: str  # the project file that has the `include:`
    kind: str  # local, project, template, remote, component or artifact
    gated: bool  # has `rules:`, so whether it is included depends on the trigger
    target: str  # what it names (for a local include: the path in the project)


class _TolerantLoader(yaml.SafeLoader):
    """PyYAML, reading ``!reference [...]`` and other tags as null: only `include` matters."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _include_entries(project: Path) -> list[IncludeEntry]:
    entries = []
    files = sorted(p for p in project.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
    for path in files:
        for document in yaml.load_all(path.read_text(), Loader=_TolerantLoader):
            if not isinstance(document, dict) or "include" not in document:
                continue
            raw = document["include"]
            for item in raw if isinstance(raw, list) else [raw]:
                if isinstance(item, str):
                    kind = "remote" if item.startswith(("http://", "https://")) else "local"
                    target = item
                else:
                    kind = next(k for k in INCLUDE_KINDS if k in item)
                    target = str(item[kind])
                gated = isinstance(item, dict) and "rules" in item
                file = str(path.relative_to(project))
                entries.append(IncludeEntry(file, kind, gated, target.lstrip("/")))
    return entries


def _project_names(*, local_only: bool | None = None) -> list[Any]:
    root = corpus_dir()
    if root is None:
        return [pytest.param("", marks=pytest.mark.skip(reason="real-world corpus not found"))]
    names = []
    for path in sorted((root / PROJECTS).iterdir()):
        if not path.is_dir() or path.name in NOT_PROJECTS:
            continue
        is_local = all(e.kind == "local" for e in _include_entries(path))
        if local_only is None or local_only == is_local:
            names.append(path.name)
    return names


def _compile(corpus: Path, project: str, context: TriggerContext) -> CompileResult:
    return compile_pipeline(corpus / PROJECTS / project, context)


def _errors(result: CompileResult) -> list[tuple[str, int, str]]:
    return [(p.path, p.line, p.message) for p in result.problems if p.severity == "error"]


def test_the_corpus_has_both_kinds_of_project(corpus: Path) -> None:
    # guards the parametrization below: a broken include reader would empty one side
    assert len(_project_names(local_only=True)) == 19
    assert len(_project_names(local_only=False)) == 10


@pytest.mark.parametrize("project", _project_names())
@pytest.mark.parametrize("trigger", sorted(CONTEXTS))
def test_every_project_compiles_into_a_consistent_plan(
    corpus: Path, project: str, trigger: str
) -> None:
    result = _compile(corpus, project, CONTEXTS[trigger])
    jobs = result.plan.jobs
    assert jobs, result.problems
    names = [job.name for job in jobs]
    assert len(names) == len(set(names)), "two jobs share a name"
    running = {job.name for job in jobs if job.when != When.NEVER}
    for job in jobs:
        assert job.stage in result.plan.stages or result.has_errors, job.name
        if job.when != When.NEVER:
            # resolved needs name jobs of this plan that run (the rest were dropped or reported)
            assert set(job.need_names or ()) <= running, job.name


@pytest.mark.parametrize("project", _project_names(local_only=True))
def test_projects_with_only_local_includes_lint_as_gitlab_does(corpus: Path, project: str) -> None:
    expected = KNOWN_INVALID.get(project, set())
    for trigger, context in CONTEXTS.items():
        errors = _errors(_compile(corpus, project, context))
        assert {(path, line) for path, line, _ in errors} == {
            (path, line) for path, line, _ in expected
        }, (trigger, errors)
        for path, line, words in expected:
            message = next(m for p, n, m in errors if (p, n) == (path, line))
            assert words in message, (trigger, message)


@pytest.mark.parametrize("project", _project_names(local_only=False))
def test_projects_with_other_includes_fail_only_on_those_includes(
    corpus: Path, project: str
) -> None:
    root = corpus / PROJECTS / project
    result = compile_pipeline(root, CONTEXTS["push-default-branch"])
    errors = [p for p in result.problems if p.severity == "error"]
    assert {p.code for p in errors} <= {UNRESOLVED_INCLUDE}, [(p.path, p.message) for p in errors]
    # one error per include that is not local, in the file that has it; includes with rules,
    # or in a file included with rules, are left out for this trigger (gitlab-runner's
    # danger-review component; omnibus-gitlab's gitlab-com.yml, tested below)
    entries = _include_entries(root)
    gated_files = {e.target for e in entries if e.kind == "local" and e.gated}
    ungated = Counter(
        e.file for e in entries if e.kind != "local" and not e.gated and e.file not in gated_files
    )
    assert Counter(p.file for p in errors) == ungated
    # what an unresolved include may have defined is only a warning (and says so)
    for problem in result.problems:
        if problem.code in MAYBE_FROM_INCLUDES:
            assert problem.severity == "warning", problem
            assert "include that was not resolved" in problem.message


def test_a_rule_gated_include_of_another_kind_is_reported_when_its_rule_matches(
    corpus: Path,
) -> None:
    # omnibus-gitlab's .gitlab-ci.yml:55-57 includes gitlab-ci-config/gitlab-com.yml only when
    # `$CI_SERVER_HOST == "gitlab.com" && $CI_PROJECT_PATH == $CANONICAL_PROJECT_PATH`; that
    # file includes a component (line 16) and a template (line 19). include:rules see trigger
    # and predefined variables only, so CANONICAL_PROJECT_PATH comes with the trigger here.
    context = TriggerContext(
        branch="master",
        default_branch="master",
        project_path="gitlab-org/omnibus-gitlab",
        variables={
            "CI_SERVER_HOST": "gitlab.com",
            "CANONICAL_PROJECT_PATH": "gitlab-org/omnibus-gitlab",
        },
    )
    result = _compile(corpus, "gitlabhq__omnibus-gitlab", context)
    errors = [p for p in result.problems if p.severity == "error"]
    assert [(p.file, p.line, p.code) for p in errors] == [
        ("gitlab-ci-config/gitlab-com.yml", 16, UNRESOLVED_INCLUDE),
        ("gitlab-ci-config/gitlab-com.yml", 19, UNRESOLVED_INCLUDE),
    ]
    assert "danger-review" in errors[0].message
    assert "Jobs/Container-Scanning.gitlab-ci.yml" in errors[1].message
    # without the rule's variables the file is not included: no error at all
    assert not _compile(
        corpus, "gitlabhq__omnibus-gitlab", CONTEXTS["push-default-branch"]
    ).has_errors


# --- project shapes, read from the files -------------------------------------------------


def _dav1d(corpus: Path, **trigger: Any) -> CompileResult:
    context = TriggerContext(default_branch="master", project_path="videolan/dav1d", **trigger)
    return _compile(corpus, "videolan__dav1d", context)


def test_dav1d_matrix_names_and_a_need_on_one_matrix_instance(corpus: Path) -> None:
    result = _dav1d(corpus, branch="master")
    plan = result.plan
    assert result.problems == []
    assert plan.stages == (".pre", "style", "build", "test", ".post")  # lines 1-4
    # 55 job keys; parallel:matrix adds bitdepth 2, build-win 2, build-win-arm 2, wasm 2,
    # riscv64 2 (5 jobs, +5), test-debian-riscv64 4 (+3) and test-debian-aarch64-qemu 5 (+4)
    assert len(plan.jobs) == 67
    # build-win (line 236): matrix CROSSFILE [i686-w64-mingw32, x86_64-w64-mingw32]
    win32, win64 = (
        plan.job("build-win: [i686-w64-mingw32]"),
        plan.job("build-win: [x86_64-w64-mingw32]"),
    )
    assert (win32.stage, win32.variables["CROSSFILE"], win32.node_index, win32.node_total) == (
        "build",
        "i686-w64-mingw32",
        1,
        2,
    )
    assert (win64.variables["CROSSFILE"], win64.node_index) == ("x86_64-w64-mingw32", 2)
    # test-win64 (line 704): needs: ["build-win: [x86_64-w64-mingw32]"], stage from .test-common
    test_win64 = plan.job("test-win64")
    assert (test_win64.stage, test_win64.need_names) == (
        "test",
        ("build-win: [x86_64-w64-mingw32]",),
    )
    # build-debian-bitdepth (line 184): DEPTH [8, 16], numbers in the file, strings in the env
    assert plan.job("build-debian-bitdepth: [16]").variables["DEPTH"] == "16"
    # test-debian-riscv64 (lines 747-765): 4 QEMU_CPU values, each needing both instances of
    # build-debian-riscv64 (`needs: ["build-debian-riscv64"]` names the whole matrix job)
    riscv_tests = [j for j in plan.jobs if j.base_name == "test-debian-riscv64"]
    assert riscv_tests[0].name == (
        "test-debian-riscv64: [rv64,v=true,vext_spec=v1.0,vlen=128,elen=64]"
    )
    assert len(riscv_tests) == 4
    for job in riscv_tests:
        assert job.need_names == (
            "build-debian-riscv64: [riscv64-linux]",
            "build-debian-riscv64: [riscv64-linux-clang]",
        )
    # .test-argon (line 512): allow_failure: true, rules: default branch only
    argon = plan.job("test-debian-argon")
    assert (argon.when, argon.allow_failure.allowed) == (When.ON_SUCCESS, True)
    # x86inc-check (line 100): allow_failure: true; pages on master, build-pages elsewhere
    assert plan.job("x86inc-check").allow_failure.allowed is True
    assert (plan.job("pages").when, plan.job("build-pages").when) == (When.ON_SUCCESS, When.NEVER)
    # the release jobs want a tag in videolan/dav1d (lines 321-339)
    assert plan.job("build-android-armv7-release").when == When.NEVER


def test_dav1d_rules_for_a_feature_branch_and_a_tag(corpus: Path) -> None:
    feature = _dav1d(corpus, branch="feature").plan
    assert feature.job("test-debian-argon").when == When.NEVER
    assert (feature.job("pages").when, feature.job("build-pages").when) == (
        When.NEVER,
        When.ON_SUCCESS,
    )
    tag = _dav1d(corpus, tag="1.5.0")
    assert not tag.has_errors
    assert tag.plan.job("build-android-armv7-release").when == When.ON_SUCCESS
    assert tag.plan.job("build-android-armv7").when == When.NEVER  # `if: $CI_COMMIT_BRANCH`


def _pipewire(corpus: Path, **trigger: Any) -> CompileResult:
    context = TriggerContext(default_branch="master", **trigger)
    return _compile(corpus, "PipeWire__pipewire", context)


def test_pipewire_needs_parallel_matrix_follows_the_needing_instance(corpus: Path) -> None:
    result = _pipewire(corpus, branch="master")
    plan = result.plan
    assert {p.code for p in result.problems if p.severity == "error"} == {UNRESOLVED_INCLUDE}
    assert plan.stages == (
        ".pre", "container", "container_coverity", "build", "analysis", "pages", ".post"
    )  # fmt: skip
    # 26 job keys (5 container, 15 build, 5 analysis, pages); matrices: .debian-archictectures
    # 7 ARCH for container_debian and build_on_debian (+12), build_all, _no_commandline_options
    # and build_release 2 CC each (+3), build_with_custom_options 11x2 (+21), and
    # build_session_managers 5 (+4)
    assert len(plan.jobs) == 66
    archs = ["amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x"]
    # build_on_debian (line 345): needs container_debian with
    # parallel:matrix ARCH: ['$[[ matrix.ARCH ]]'], artifacts: false
    for arch in archs:
        job = plan.job(f"build_on_debian: [{arch}]")
        assert job.variables["ARCH"] == arch
        assert job.needs is not None
        assert [(n.job, n.artifacts) for n in job.needs] == [(f"container_debian: [{arch}]", False)]
    # check_missing_headers (line 734) and pages (line 743) need artifacts: true
    assert [(n.job, n.artifacts) for n in plan.job("check_missing_headers").needs or ()] == [
        ("build_on_fedora", True)
    ]
    custom = [j.name for j in plan.jobs if j.base_name == "build_with_custom_options"]
    assert (len(custom), custom[0], custom[-1]) == (
        22,
        "build_with_custom_options: [docs, enabled]",
        "build_with_custom_options: [sndfile, disabled]",
    )
    managers = [j for j in plan.jobs if j.base_name == "build_session_managers"]
    assert managers[0].name == "build_session_managers: [[]]"  # the value is the text "[]"
    assert all(j.allow_failure.allowed for j in managers)  # line 606
    # .coverity / .not_coverity rules (lines 243-248) and pages on master (line 760)
    assert plan.job("container_coverity").when == When.NEVER
    assert plan.job("build_on_ubuntu").when == When.ON_SUCCESS
    assert plan.job("pages").when == When.ON_SUCCESS


def test_pipewire_coverity_variable_and_branch_switch_the_rules(corpus: Path) -> None:
    coverity = _pipewire(corpus, branch="master", variables={"COVERITY": "1"}).plan
    assert coverity.job("container_coverity").when == When.ON_SUCCESS
    assert coverity.job("build_on_ubuntu").when == When.NEVER
    assert coverity.job("pages").when == When.NEVER  # `if: $COVERITY != null, when: never`
    feature = _pipewire(corpus, branch="fix").plan
    assert feature.job("pages").when == When.NEVER
    assert feature.job("build_on_fedora_html_docs").when == When.NEVER  # !reference [pages, rules]


def _gromacs(corpus: Path, **trigger: Any) -> CompileResult:
    # every rule set starts with `$CI_PROJECT_NAMESPACE != "gromacs"` -> never
    # (admin/gitlab-ci/rules.gitlab-ci.yml:20); TriggerContext does not derive that
    # predefined variable, so the trigger gives it
    context = TriggerContext(variables={"CI_PROJECT_NAMESPACE": "gromacs"}, **trigger)
    return _compile(corpus, "gromacs__gromacs", context)


def test_gromacs_fifty_files_of_local_includes(corpus: Path) -> None:
    result = _gromacs(
        corpus,
        source="merge_request_event",
        merge_request={"CI_MERGE_REQUEST_IID": "7"},
    )
    plan = result.plan
    assert (result.problems, plan.created) == ([], True)
    # 198 visible job keys across the 50 files, no parallel
    assert len(plan.jobs) == 198
    assert plan.stages[:5] == (".pre", "pre-build", "configure-build", "build", "test")
    assert len(plan.stages) == 19  # 17 in .gitlab-ci.yml:39-60, plus .pre and .post
    # admin/gitlab-ci/gromacs.matrix/gromacs.gcc-12.gitlab-ci.yml: configure -> build -> test
    # for merge requests; regressiontest has .rules:post-merge-acceptance (never for MRs)
    configure = plan.job("gromacs:gcc-12:configure")
    build = plan.job("gromacs:gcc-12:build")
    test = plan.job("gromacs:gcc-12:test")
    assert (configure.stage, configure.when, configure.needs) == (
        "configure-build",
        When.ON_SUCCESS,
        None,
    )
    assert (build.stage, build.need_names) == ("build", ("gromacs:gcc-12:configure",))
    assert (test.stage, test.when, test.need_names) == (
        "test",
        When.ON_SUCCESS,
        ("gromacs:gcc-12:build",),
    )
    assert plan.job("gromacs:gcc-12:regressiontest").when == When.NEVER
    # lint.gitlab-ci.yml:260: linkchecker (nightly only) needs and depends on webpage:build;
    # excluded here, it must not be judged on needs it did not resolve
    assert plan.job("linkchecker").when == When.NEVER


def test_gromacs_post_merge_push_runs_the_regression_tests(corpus: Path) -> None:
    result = _gromacs(corpus, branch="main")
    assert not result.has_errors
    regression = result.plan.job("gromacs:gcc-12:regressiontest")
    assert regression.when == When.ON_SUCCESS
    assert regression.need_names == ("gromacs:gcc-12:build", "regressiontests:prepare")
    assert result.plan.job("gromacs:gcc-12:test").when == When.NEVER  # `if-push-then-never`
