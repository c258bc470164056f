"""Apply rules to job drafts, expand ``parallel``, resolve ``needs``, and check the graph.

This is where a pipeline's shape is decided for one trigger: which jobs exist, under which
names, and what each waits for. Graph problems (unknown or excluded needs, needs on later
stages, cycles, bad dependencies) are reported here with the position of the offending need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ferrous.domain.statuses import When
from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.job_fields import CACHE_POLICIES
from ferrous.pipeline_config.job_reader import JobDraft
from ferrous.pipeline_config.matrix import Instance, expand_parallel
from ferrous.pipeline_config.needs import NeedRef, read_needs
from ferrous.pipeline_config.plan import AllowFailure, Cache, JobSpec, Need
from ferrous.pipeline_config.problems import UNKNOWN_NEED, UNKNOWN_STAGE
from ferrous.pipeline_config.rules import Files, first_match, only_except_allows
from ferrous.pipeline_config.variables import expand, expand_mapping, reference_cycles


@dataclass(slots=True)
class _Outcome:
    """A draft after rules: when it runs and what its rules changed."""

    draft: JobDraft
    when: When
    allow_failure: AllowFailure
    start_in: int | None
    needs: tuple[NeedRef, ...] | None
    interruptible: bool
    variables: dict[str, str]
    expanded: dict[str, str]  # `variables`, expanded: what rules and keyword values see
    trigger: Mapping[str, str]  # variables given with the trigger: they beat the file's
    instances: list[Instance] = field(default_factory=list)


def resolve_graph(
    check: Checker,
    drafts: list[JobDraft],
    stages: tuple[str, ...],
    *,
    predefined: Mapping[str, str],
    global_variables: Mapping[str, str],
    trigger_variables: Mapping[str, str],
    global_raw: frozenset[str],
    files: Files,
) -> list[JobSpec]:
    stage_index = {name: i for i, name in enumerate(stages)}
    outcomes: dict[str, _Outcome] = {}
    for draft in drafts:
        if draft.stage not in stage_index:
            check.error(
                f"{draft.path}.stage",
                f"job {draft.name!r}: stage {draft.stage!r} is not defined; stages are "
                + ", ".join(stages),
                draft.stage_pos,
                code=UNKNOWN_STAGE,
            )
            stage_index[draft.stage] = len(stage_index)  # keep checking the rest of the job
        variables = _job_variables(draft, predefined, global_variables, trigger_variables)
        for cycle in reference_cycles(variables, draft.raw_variables | global_raw):
            if len(cycle) == 1:
                continue  # `A: $A` takes A from outside (the trigger or the agent), as GitLab
            check.error(
                f"{draft.path}.variables",
                f"job {draft.name!r}: circular variable reference: {' -> '.join(cycle)}",
                draft.pos,
            )
        outcome = _apply_rules(
            check, draft, variables, trigger_variables, draft.raw_variables | global_raw, files
        )
        if draft.parallel is not None:
            instances = expand_parallel(
                check,
                draft.name,
                draft.parallel,
                f"{draft.path}.parallel",
                draft.parallel_pos or draft.pos,
            )
            outcome.instances = instances or [Instance(draft.name, {}, 0, 0)]
        else:
            outcome.instances = [Instance(draft.name, {}, 0, 0)]
        outcomes[draft.name] = outcome
    instance_owner = {
        i.name: name for name, o in outcomes.items() for i in o.instances if i.name != name
    }
    specs: list[JobSpec] = []
    for outcome in outcomes.values():
        specs.extend(_specs(check, outcome, outcomes, stage_index, global_raw, instance_owner))
    _check_cycles(check, specs, outcomes)
    return specs


def _job_variables(
    draft: JobDraft,
    predefined: Mapping[str, str],
    global_variables: Mapping[str, str],
    trigger: Mapping[str, str],
) -> dict[str, str]:
    """Precedence, lowest first: predefined, inherited globals, the job's own, the trigger's."""
    inherit = draft.inherit_variables
    if inherit is True:
        inherited = dict(global_variables)
    elif inherit is False:
        inherited = {}
    else:
        inherited = {k: v for k, v in global_variables.items() if k in inherit}
    return {**predefined, **inherited, **draft.variables, **trigger}


def _apply_rules(
    check: Checker,
    draft: JobDraft,
    variables: dict[str, str],
    trigger: Mapping[str, str],
    raw: frozenset[str],
    files: Files,
) -> _Outcome:
    manual_default = draft.when == When.MANUAL
    outcome = _Outcome(
        draft=draft,
        when=draft.when or When.ON_SUCCESS,
        allow_failure=draft.allow_failure or AllowFailure(allowed=manual_default),
        start_in=draft.start_in,
        needs=draft.needs,
        interruptible=draft.interruptible,
        variables=variables,
        expanded=expand_mapping(variables, raw),
        trigger=trigger,
    )
    expanded = outcome.expanded
    if draft.rules is not None:
        rule = first_match(draft.rules, expanded, files)
        if rule is None:
            outcome.when = When.NEVER
            return outcome
        outcome.when = rule.when or draft.when or When.ON_SUCCESS
        outcome.allow_failure = rule.allow_failure or draft.allow_failure or AllowFailure()
        if rule.start_in is not None:
            outcome.start_in = rule.start_in
        if rule.interruptible is not None:
            outcome.interruptible = rule.interruptible
        if rule.variables:
            outcome.variables = {**variables, **rule.variables, **trigger}
            outcome.expanded = expand_mapping(outcome.variables, raw)
        if rule.needs is not None:
            outcome.needs = read_needs(check, rule.needs, f"{draft.path}.rules.needs", rule.pos)
        if outcome.when == When.DELAYED and outcome.start_in is None:
            check.error(
                f"{draft.path}.rules", f"job {draft.name!r}: when: delayed needs start_in", rule.pos
            )
    elif not only_except_allows(draft.only, draft.except_, expanded, files):
        outcome.when = When.NEVER
    return outcome


_MATRIX_EXPRESSION = re.compile(r"\$\[\[\s*matrix\.([A-Za-z_][A-Za-z0-9_]*)\s*\]\]")


def _instances_for(need: NeedRef, target: _Outcome, own: dict[str, str]) -> list[str]:
    """The target's instances a need selects; ``$[[ matrix.X ]]`` is the needing instance's X."""
    if need.matrix is None:
        return [i.name for i in target.instances]
    selectors = [
        {k: _MATRIX_EXPRESSION.sub(lambda m: own.get(m[1], m[0]), v) for k, v in sel.items()}
        for sel in need.matrix
    ]
    return [
        i.name
        for i in target.instances
        if any(all(i.variables.get(k) == v for k, v in sel.items()) for sel in selectors)
    ]


def _resolve_needs(
    check: Checker,
    outcome: _Outcome,
    outcomes: dict[str, _Outcome],
    stage_index: dict[str, int],
    instance_owner: dict[str, str],
    own: dict[str, str],
) -> tuple[Need, ...] | None:
    if outcome.needs is None:
        return None
    draft = outcome.draft
    resolved: list[Need] = []
    for need in outcome.needs:
        target = outcomes.get(need.job)
        single = None
        if target is None and need.job in instance_owner:
            # `needs: ["build: [linux]"]` names one instance of a parallel job directly
            target, single = outcomes[instance_owner[need.job]], need.job
        if need.job == draft.name:
            check.error(
                need.path,
                f"job {draft.name!r} needs itself (circular dependency: self-dependency)",
                need.pos,
            )
            continue
        if target is None:
            if not need.optional:
                check.error(
                    need.path,
                    f"job {draft.name!r} needs {need.job!r}, "
                    "which is not a job in this pipeline file",
                    need.pos,
                    code=UNKNOWN_NEED,
                )
            continue
        if target.when == When.NEVER:
            if not need.optional and outcome.when != When.NEVER:
                check.error(
                    need.path,
                    f"job {draft.name!r} needs {need.job!r}, but {need.job!r} is not in this "
                    "pipeline (its rules, only or except leave it out); make the need optional "
                    "or change the rules",
                    need.pos,
                )
            continue
        if stage_index[target.draft.stage] > stage_index[draft.stage]:
            check.error(
                need.path,
                f"job {draft.name!r} (stage {draft.stage}) needs {need.job!r}, which is in a "
                f"later stage ({target.draft.stage})",
                need.pos,
            )
            continue
        names = [single] if single else _instances_for(need, target, own)
        if not names and not need.optional:
            check.error(
                need.path,
                f"job {draft.name!r}: no instance of {need.job!r} matches the "
                "parallel:matrix selection",
                need.pos,
            )
        resolved.extend(
            Need(job=n, artifacts=need.artifacts, optional=need.optional) for n in names
        )
    return tuple(resolved)


def _resolve_dependencies(
    check: Checker,
    outcome: _Outcome,
    outcomes: dict[str, _Outcome],
    stage_index: dict[str, int],
    needs: tuple[Need, ...] | None,
    instance_owner: dict[str, str],
) -> tuple[str, ...] | None:
    draft = outcome.draft
    if draft.dependencies is None:
        return None
    resolved: list[str] = []
    # An excluded job's needs are not resolved (they are empty), so they cannot be compared
    need_names = None if needs is None or outcome.when == When.NEVER else {n.job for n in needs}
    for index, name in enumerate(draft.dependencies):
        path = f"{draft.path}.dependencies[{index}]"
        pos = draft.dependencies_pos or draft.pos
        target = outcomes.get(name)
        single = None
        if target is None and name in instance_owner:  # one instance of a parallel job
            target, single = outcomes[instance_owner[name]], name
        if target is None:
            if outcome.when != When.NEVER:
                check.error(
                    path,
                    f"job {draft.name!r} depends on {name!r}, which is not in this pipeline",
                    pos,
                )
            continue
        if target.when == When.NEVER:
            # GitLab creates the pipeline (only `needs` are checked when it is created) and the
            # job runs without that job's artifacts: worth a warning, not a refusal.
            if outcome.when != When.NEVER:
                check.warning(
                    path,
                    f"job {draft.name!r} depends on {name!r}, which its rules, only or except "
                    "leave out of this pipeline: its artifacts will not be downloaded",
                    pos,
                )
            continue
        names = [single] if single else [i.name for i in target.instances]
        if stage_index[target.draft.stage] > stage_index[draft.stage]:
            check.error(
                path,
                f"job {draft.name!r} (stage {draft.stage}) depends on {name!r}, which is in a "
                f"later stage ({target.draft.stage})",
                pos,
            )
            continue
        if need_names is not None and not set(names) <= need_names:
            check.error(
                path,
                f"job {draft.name!r} depends on {name!r}, which must also be in its needs",
                pos,
            )
            continue
        resolved.extend(names)
    return tuple(resolved)


def _specs(
    check: Checker,
    outcome: _Outcome,
    outcomes: dict[str, _Outcome],
    stage_index: dict[str, int],
    global_raw: frozenset[str],
    instance_owner: dict[str, str],
) -> list[JobSpec]:
    draft = outcome.draft
    raw = draft.raw_variables | global_raw
    specs = []
    for instance in outcome.instances:
        needs = (
            _resolve_needs(
                check, outcome, outcomes, stage_index, instance_owner, instance.variables
            )
            if outcome.when != When.NEVER
            else (None if outcome.needs is None else ())
        )
        dependencies = _resolve_dependencies(
            check, outcome, outcomes, stage_index, needs, instance_owner
        )
        variables = {**outcome.variables, **instance.variables, **outcome.trigger}
        if instance.total:
            variables["CI_NODE_INDEX"] = str(instance.index)
            variables["CI_NODE_TOTAL"] = str(instance.total)
        expanded = expand_mapping(variables, raw) if instance.total else outcome.expanded
        spec = JobSpec(
            name=instance.name,
            base_name=draft.name,
            stage=draft.stage,
            stage_index=stage_index[draft.stage],
            when=outcome.when,
            start_in=outcome.start_in,
            allow_failure=outcome.allow_failure,
            needs=needs,
            dependencies=dependencies,
            before_script=draft.before_script,
            script=draft.script,
            after_script=draft.after_script,
            variables=variables,
            raw_variables=raw,
            timeout=draft.timeout,
            retry=draft.retry,
            # `artifacts:name` and `cache:key` are expanded by the runner: they may use the
            # job's predefined variables ($CI_JOB_NAME, ...), which only it knows
            artifacts=draft.artifacts,
            cache=tuple(_expand_cache(check, draft, c, expanded) for c in draft.cache),
            tags=tuple(expand(t, expanded) for t in draft.tags),
            image=draft.image and replace(draft.image, name=expand(draft.image.name, expanded)),
            services=draft.services,
            environment=draft.environment
            and replace(
                draft.environment,
                name=expand(draft.environment.name, expanded),
                url=expand(draft.environment.url, expanded) if draft.environment.url else None,
            ),
            resource_group=expand(draft.resource_group, expanded) if draft.resource_group else None,
            interruptible=outcome.interruptible,
            coverage=draft.coverage,
            node_index=instance.index or None,
            node_total=instance.total or None,
            description=draft.description,
        )
        specs.append(spec)
    return specs


def _expand_cache(
    check: Checker, draft: JobDraft, cache: Cache, variables: dict[str, str]
) -> Cache:
    policy = expand(cache.policy, variables)
    if policy not in CACHE_POLICIES:
        check.error(
            f"{draft.path}.cache.policy",
            f"job {draft.name!r}: cache policy {cache.policy!r} is {policy!r}, not one of "
            + ", ".join(CACHE_POLICIES),
            draft.pos,
        )
        policy = "pull-push"
    return replace(cache, policy=policy)


def _check_cycles(check: Checker, specs: list[JobSpec], outcomes: dict[str, _Outcome]) -> None:
    graph = {s.name: [n.job for n in s.needs or ()] for s in specs if s.when != When.NEVER}
    base_of = {s.name: s.base_name for s in specs}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt in graph and state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                draft = outcomes[base_of[cycle[0]]].draft
                check.error(
                    f"{draft.path}.needs",
                    "the needs form a cycle: " + " -> ".join(cycle),
                    draft.needs_pos or draft.pos,
                )
                return
