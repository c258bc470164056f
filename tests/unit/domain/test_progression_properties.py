"""Properties of the progression rules over random pipelines (stages, needs, whens) and results."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrous.domain.progression import (
    JobNode,
    JobState,
    advance,
    build_status,
    reset_skipped,
)
from ferrous.domain.statuses import JobStatus, When

from .driver import Run, job

S = JobStatus
FINISHED = {S.SUCCESS, S.FAILED, S.CANCELED, S.SKIPPED}
ACTIVE = {S.PENDING, S.RUNNING, S.SCHEDULED, S.WAITING}
DECISIONS = {
    When.ON_SUCCESS: {S.PENDING, S.SKIPPED},
    When.ON_FAILURE: {S.PENDING, S.SKIPPED},
    When.ALWAYS: {S.PENDING, S.SKIPPED},
    When.MANUAL: {S.MANUAL, S.SKIPPED},
    When.DELAYED: {S.SCHEDULED, S.SKIPPED},
}

Nodes = dict[str, JobNode]
States = dict[str, JobState]


@st.composite
def pipelines(draw: st.DrawFn) -> Nodes:
    """Up to 9 jobs over up to 4 stages; a job may need jobs of its own or earlier stages."""
    count = draw(st.integers(1, 9))
    stages = sorted(draw(st.lists(st.integers(0, 3), min_size=count, max_size=count)))
    nodes: list[JobNode] = []
    for index, stage in enumerate(stages):
        earlier = [node.name for node in nodes if node.stage_index <= stage]
        some_needs = (
            st.lists(st.sampled_from(earlier), unique=True, max_size=3) if earlier else st.just([])
        )
        needs = draw(st.none() | some_needs)
        when = draw(st.sampled_from(When))
        nodes.append(
            job(f"j{index}", stage, when=when, needs=needs, allow_failure=draw(st.booleans()))
        )
    return {node.name: node for node in nodes}


def states_for(nodes: Nodes) -> st.SearchStrategy[States]:
    """Any status for every job (even ones no real build reaches): the rules must cope. Half
    the jobs are ``created``, so that there is something to decide."""
    names = [name for name, node in nodes.items() if node.when != When.NEVER]
    status = st.just(S.CREATED) | st.sampled_from(JobStatus)
    state = st.builds(JobState, status, st.booleans())
    return st.fixed_dictionaries(dict.fromkeys(names, state))


pipelines_and_states = pipelines().flatmap(
    lambda nodes: st.tuples(st.just(nodes), states_for(nodes))
)


def applied(states: States, changes: dict[str, JobStatus]) -> States:
    return states | {name: JobState(status) for name, status in changes.items()}


def is_ignored(node: JobNode, state: JobState) -> bool:
    return state.status == S.MANUAL and node.allow_failure


def upstream_of(node: JobNode, nodes: Nodes) -> list[JobNode]:
    if node.needs is not None:
        found = [nodes[name] for name in node.needs if name in nodes]
    else:
        found = [other for other in nodes.values() if other.stage_index < node.stage_index]
    return [other for other in found if other.when != When.NEVER]


@given(pipelines_and_states)
def test_advance_is_idempotent(case: tuple[Nodes, States]) -> None:
    nodes, states = case
    changes = advance(nodes, states)
    assert advance(nodes, applied(states, changes)) == {}


@given(pipelines_and_states)
def test_advance_only_decides_created_jobs_and_by_their_when(case: tuple[Nodes, States]) -> None:
    nodes, states = case
    for name, status in advance(nodes, states).items():
        node = nodes[name]
        assert node.when != When.NEVER
        assert states[name].status == S.CREATED
        assert status in DECISIONS[node.when]


@settings(max_examples=1000)
@given(pipelines_and_states, st.data())
def test_decisions_do_not_depend_on_dict_order(
    case: tuple[Nodes, States], data: st.DataObject
) -> None:
    nodes, states = case
    expected = advance(nodes, states), build_status(nodes.values(), states)
    for names in (list(reversed(nodes)), data.draw(st.permutations(list(nodes)))):
        shuffled_nodes = {name: nodes[name] for name in names}
        shuffled_states = {name: states[name] for name in reversed(names) if name in states}
        got = advance(shuffled_nodes, shuffled_states)
        assert (got, build_status(shuffled_nodes.values(), shuffled_states)) == expected


@given(pipelines_and_states)
def test_no_job_is_decided_before_its_upstream_is_settled(case: tuple[Nodes, States]) -> None:
    """Every upstream job is finished, or a manual job nobody has to play. The one exception is
    GitLab's DAG rule: a need that will not run (skipped, or an optional manual job) decides
    the job at once, even while its other needs still run."""
    nodes, states = case
    changes = advance(nodes, states)
    after = applied(states, changes)
    for name in changes:
        node = nodes[name]
        upstream = [(other, after[other.name]) for other in upstream_of(node, nodes)]
        settled = all(state.status in FINISHED or is_ignored(o, state) for o, state in upstream)
        will_not_run = node.needs is not None and any(
            state.status == S.SKIPPED or is_ignored(o, state) for o, state in upstream
        )
        assert settled or will_not_run, name


@given(pipelines_and_states)
def test_a_job_left_created_is_waiting_for_something(case: tuple[Nodes, States]) -> None:
    nodes, states = case
    after = applied(states, advance(nodes, states))
    for name, state in after.items():
        if state.status != S.CREATED:
            continue
        upstream = [(o, after[o.name]) for o in upstream_of(nodes[name], nodes)]
        assert any(s.status not in FINISHED and not is_ignored(o, s) for o, s in upstream)


@given(pipelines_and_states)
def test_reset_skipped_only_brings_back_skipped_jobs(case: tuple[Nodes, States]) -> None:
    nodes, states = case
    restarted = [name for name in states if states[name].status in ACTIVE][:2]
    for name, status in reset_skipped(nodes, states, restarted).items():
        assert status == S.CREATED
        assert states[name].status == S.SKIPPED
        assert nodes[name].when != When.NEVER


# --- whole builds: random results, played or not -----------------------------------------

outcomes = st.sampled_from([S.SUCCESS, S.SUCCESS, S.FAILED, S.CANCELED])


def drive(run: Run, data: st.DataObject, *, play_manual: bool) -> None:
    """Run the build to its end: agents finish every active job with a random result; people
    play every manual job once nothing else can move, when ``play_manual``."""
    run.start()
    for _ in range(100):
        active = [name for name, status in run.statuses().items() if status in ACTIVE]
        if active:
            name = data.draw(st.sampled_from(active))
            if run.status_of(name) in (S.SCHEDULED, S.WAITING):
                run.set(name, S.PENDING)
            run.finish(name, data.draw(outcomes), failure_allowed=run.nodes[name].allow_failure)
            run.advance()
            continue
        manual = [name for name, status in run.statuses().items() if status == S.MANUAL]
        if not (play_manual and manual):
            return
        run.play(data.draw(st.sampled_from(manual)))
    raise AssertionError("the build did not settle")


@settings(max_examples=300)
@given(pipelines(), st.data())
def test_a_build_nobody_plays_ends_finished_or_blocked(nodes: Nodes, data: st.DataObject) -> None:
    run = Run(nodes.values())
    drive(run, data, play_manual=False)
    statuses = run.statuses()
    blocking = [n for n, s in statuses.items() if s == S.MANUAL and not nodes[n].allow_failure]
    if blocking:
        assert run.build.value == "manual"
    else:
        assert run.build.is_finished
        assert all(s in FINISHED or s == S.MANUAL for s in statuses.values()), statuses


@settings(max_examples=300)
@given(pipelines(), st.data())
def test_a_build_whose_manual_jobs_are_all_played_finishes(
    nodes: Nodes, data: st.DataObject
) -> None:
    run = Run(nodes.values())
    drive(run, data, play_manual=True)
    assert all(status in FINISHED for status in run.statuses().values()), run.statuses()
    assert run.build.is_finished


@settings(max_examples=300)
@given(pipelines(), st.data())
def test_a_finished_build_status_follows_its_results(nodes: Nodes, data: st.DataObject) -> None:
    """Failed if a failure was not allowed, else canceled if a cancel was not allowed, else
    skipped if nothing ran, else success; unplayed optional manual jobs change nothing."""
    run = Run(nodes.values())
    drive(run, data, play_manual=False)
    if not run.build.is_finished:
        return
    counted = {
        name: state for name, state in run.states.items() if not is_ignored(nodes[name], state)
    }
    real = {s.status for s in counted.values() if not s.failure_allowed}
    if S.FAILED in real:
        expected = "failed"
    elif S.CANCELED in {s.status for n, s in counted.items() if not nodes[n].allow_failure}:
        expected = "canceled"
    elif all(s.status == S.SKIPPED for s in counted.values()):
        expected = "skipped"
    else:
        expected = "success"
    assert run.build.value == expected
