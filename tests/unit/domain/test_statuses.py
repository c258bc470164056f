"""The job status transition table: every legal move passes, every other one raises."""

from __future__ import annotations

import itertools

import pytest

from ferrous.domain.errors import Conflict, InvalidTransition
from ferrous.domain.statuses import (
    FINISHED_STATUSES,
    JOB_TRANSITIONS,
    BuildStatus,
    JobStatus,
    check_transition,
)

S = JobStatus

#: Written out again here, on purpose: a change to the table must be a deliberate one.
LEGAL = {
    S.CREATED: {S.PENDING, S.SKIPPED, S.MANUAL, S.SCHEDULED, S.WAITING, S.CANCELED},
    S.WAITING: {S.PENDING, S.CANCELED, S.SKIPPED},
    S.MANUAL: {S.PENDING, S.WAITING, S.CANCELED, S.SKIPPED},
    S.SCHEDULED: {S.PENDING, S.WAITING, S.MANUAL, S.CANCELED, S.SKIPPED},
    S.PENDING: {S.RUNNING, S.CANCELED, S.FAILED, S.PENDING},
    S.RUNNING: {S.SUCCESS, S.FAILED, S.CANCELED, S.PENDING},
    S.SUCCESS: set(),
    S.FAILED: set(),
    S.CANCELED: set(),
    # A played or retried job sends the skipped jobs after it back (Ci::ResetSkippedJobsService).
    S.SKIPPED: {S.CREATED},
}

ALL_MOVES = list(itertools.product(JobStatus, JobStatus))


def test_the_table_has_a_row_for_every_status() -> None:
    assert set(JOB_TRANSITIONS) == set(JobStatus)


def test_the_table_is_the_expected_one() -> None:
    assert {k: set(v) for k, v in JOB_TRANSITIONS.items()} == LEGAL


@pytest.mark.parametrize(
    ("current", "new"), [(a, b) for a, b in ALL_MOVES if b in LEGAL[a]], ids=str
)
def test_a_legal_move_passes(current: JobStatus, new: JobStatus) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"), [(a, b) for a, b in ALL_MOVES if b not in LEGAL[a]], ids=str
)
def test_every_illegal_move_raises(current: JobStatus, new: JobStatus) -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition(current, new)
    assert str(current) in raised.value.message
    assert str(new) in raised.value.message


def test_an_illegal_move_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        check_transition(S.SUCCESS, S.RUNNING)


@pytest.mark.parametrize("status", [S.SUCCESS, S.FAILED, S.CANCELED])
def test_finished_statuses_are_terminal(status: JobStatus) -> None:
    assert JOB_TRANSITIONS[status] == frozenset()


def test_a_skipped_job_can_only_be_processed_again() -> None:
    assert JOB_TRANSITIONS[S.SKIPPED] == {S.CREATED}


def test_only_a_skipped_job_goes_back_to_created() -> None:
    assert {a for a, moves in JOB_TRANSITIONS.items() if S.CREATED in moves} == {S.SKIPPED}


def test_a_retry_is_a_new_attempt_not_a_move() -> None:
    for status in (S.FAILED, S.CANCELED, S.SUCCESS):
        with pytest.raises(InvalidTransition):
            check_transition(status, S.PENDING)


def test_progression_decisions_are_legal_moves_from_created() -> None:
    assert {S.PENDING, S.MANUAL, S.SCHEDULED, S.SKIPPED} <= JOB_TRANSITIONS[S.CREATED]


def test_every_status_can_be_reached_from_created() -> None:
    reached, todo = {S.CREATED}, [S.CREATED]
    while todo:
        for new in JOB_TRANSITIONS[todo.pop()] - reached:
            reached.add(new)
            todo.append(new)
    assert reached == set(JobStatus)


@pytest.mark.parametrize("status", sorted(set(JobStatus) - FINISHED_STATUSES))
def test_an_unfinished_job_can_be_canceled(status: JobStatus) -> None:
    check_transition(status, S.CANCELED)


@pytest.mark.parametrize("status", sorted(set(JobStatus) - FINISHED_STATUSES))
def test_an_unfinished_job_cannot_jump_to_success_without_running(status: JobStatus) -> None:
    if status != S.RUNNING:
        with pytest.raises(InvalidTransition):
            check_transition(status, S.SUCCESS)


def test_is_finished() -> None:
    assert {s for s in JobStatus if s.is_finished} == {S.SUCCESS, S.FAILED, S.CANCELED, S.SKIPPED}
    assert {s for s in JobStatus if s.is_finished} == FINISHED_STATUSES
    assert {s for s in BuildStatus if s.is_finished} == {
        BuildStatus.SUCCESS,
        BuildStatus.FAILED,
        BuildStatus.CANCELED,
        BuildStatus.SKIPPED,
    }


def test_every_job_status_a_build_can_wait_on_is_a_build_status() -> None:
    # build_status returns the composite of the jobs, so each waiting job status has a match.
    waiting = {S.CREATED, S.PENDING, S.RUNNING, S.MANUAL, S.SCHEDULED, S.WAITING}
    assert {s.value for s in waiting} <= {b.value for b in BuildStatus}
