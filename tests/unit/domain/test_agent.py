"""The Agent aggregate: registration, label routing, liveness and disconnection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ferrous.domain.agent import Agent, AgentStatus
from ferrous.domain.events import AgentDisconnected, AgentRegistered

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=60)


def register(
    labels: frozenset[str] = frozenset({"linux", "gpu"}), capacity: int = 2, embedded: bool = False
) -> Agent:
    return Agent.register(
        name="builder-01",
        token_hash="f" * 64,
        labels=labels,
        capacity=capacity,
        platform={"os": "linux", "arch": "x86_64"},
        now=T0,
        embedded=embedded,
    )


def test_register_makes_an_online_agent_and_records_it():
    agent = register()

    assert UUID(agent.id).version == 7
    assert (agent.name, agent.token_hash) == ("builder-01", "f" * 64)
    assert agent.labels == frozenset({"linux", "gpu"})
    assert (agent.capacity, agent.platform) == (2, {"os": "linux", "arch": "x86_64"})
    assert agent.status == AgentStatus.ONLINE
    assert agent.created_at == agent.last_seen_at == T0
    assert (agent.embedded, agent.version) == (False, 0)
    assert agent.events == [AgentRegistered(agent_id=agent.id, name="builder-01")]


def test_an_embedded_agent_says_so():
    assert register(embedded=True).embedded


@pytest.mark.parametrize(("asked", "given"), [(0, 1), (-3, 1), (1, 1), (8, 8)])
def test_capacity_is_at_least_one(asked, given):
    assert register(capacity=asked).capacity == given


def test_every_registration_gets_its_own_id():
    assert register().id != register().id


@pytest.mark.parametrize(
    ("labels", "tags", "runs"),
    [
        ({"linux", "gpu"}, (), True),
        ({"linux", "gpu"}, ("linux",), True),
        ({"linux", "gpu"}, ("gpu", "linux"), True),
        ({"linux", "gpu"}, ("gpu", "gpu"), True),
        ({"linux", "gpu"}, ("gpu", "arm64"), False),
        ({"linux", "gpu"}, ("GPU",), False),
        (set(), (), True),
        (set(), ("linux",), False),
    ],
)
def test_a_job_runs_where_every_tag_is_a_label(labels, tags, runs):
    assert register(labels=frozenset(labels)).can_run(tags) is runs


@pytest.mark.parametrize(
    ("silent_for", "silent"),
    [
        (timedelta(0), False),
        (TIMEOUT - timedelta(microseconds=1), False),
        (TIMEOUT, False),
        (TIMEOUT + timedelta(microseconds=1), True),
        (timedelta(hours=5), True),
    ],
)
def test_an_agent_is_silent_after_the_lease_timeout(silent_for, silent):
    assert register().is_silent(T0 + silent_for, TIMEOUT) is silent


def test_seen_renews_liveness():
    agent = register()
    agent.seen(T0 + timedelta(minutes=5))
    assert agent.last_seen_at == T0 + timedelta(minutes=5)
    assert not agent.is_silent(T0 + timedelta(minutes=6), TIMEOUT)
    assert agent.is_silent(T0 + timedelta(minutes=7), TIMEOUT)


def test_disconnect_takes_an_agent_offline_once():
    agent = register()
    agent.events.clear()

    agent.disconnect("lease expired: no heartbeat")
    agent.disconnect("again")

    assert agent.status == AgentStatus.OFFLINE
    assert agent.events == [
        AgentDisconnected(agent_id=agent.id, reason="lease expired: no heartbeat")
    ]
    assert not agent.is_silent(T0 + timedelta(days=1), TIMEOUT)  # offline: nothing to reap


def test_a_disconnected_agent_that_comes_back_is_online_again():
    agent = register()
    agent.disconnect("lease expired: no heartbeat")
    agent.events.clear()

    agent.seen(T0 + timedelta(minutes=10))

    assert (agent.status, agent.last_seen_at) == (AgentStatus.ONLINE, T0 + timedelta(minutes=10))
    assert agent.events == []
    agent.disconnect("lease expired: no heartbeat")
    assert [type(e).__name__ for e in agent.events] == ["AgentDisconnected"]
