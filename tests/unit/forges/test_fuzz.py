"""Whatever arrives, the webhook code raises only its declared errors.

Garbage bytes, random headers, random JSON and real-shaped payloads with parts replaced by
random values: the outcome is a delivery, ``WebhookSignatureInvalid`` or
``WebhookPayloadInvalid``, never a ``KeyError``/``TypeError`` that would be a 500. Deliveries
that are read keep the event invariants the route relies on.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrous.application.webhooks import (
    EventKind,
    WebhookDelivery,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from ferrous.infrastructure.forges.registry import PARSERS, receive_webhook
from tests.unit.forges import test_bitbucket, test_gitea, test_github, test_gitlab
from tests.unit.forges.helpers import HEADERS, SECRET, signed_headers

FORGES = sorted(HEADERS)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: forge -> the events it reads, with a well-formed payload of each to mutate
SEEDS: list[tuple[str, str, dict[str, Any]]] = [
    ("github", "push", test_github.push()),
    ("github", "pull_request", test_github.pull_request("opened")),
    ("github", "create", {"ref": "v1", "ref_type": "tag", "repository": test_github.REPO}),
    ("gitlab", "Push Hook", test_gitlab.push()),
    ("gitlab", "Tag Push Hook", test_gitlab.push(ref="refs/tags/v1")),
    ("gitlab", "Merge Request Hook", test_gitlab.merge_request("update", oldrev="a" * 40)),
    ("gitea", "push", test_gitea.push()),
    ("gitea", "pull_request", test_gitea.gitea_pr("synchronized")),
    ("gogs", "pull_request", test_gitea.gogs_pr("opened")),
    (
        "bitbucket",
        "repo:push",
        test_bitbucket.cloud_push(test_bitbucket.change("branch", "main", "a" * 40, "b" * 40)),
    ),
    ("bitbucket", "pullrequest:updated", test_bitbucket.cloud_pr()),
    ("bitbucket", "pr:from_ref_updated", test_bitbucket.server_pr()),
    (
        "bitbucket",
        "repo:refs_changed",
        {
            "repository": test_bitbucket.SERVER_REPO,
            "changes": [test_bitbucket.server_change("refs/heads/x", "UPDATE", "a" * 40, "b" * 40)],
        },
    ),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
header_names = st.sampled_from(
    [name for names in HEADERS.values() for name in names[:2]]
    + ["Content-Type", "X-GitHub-Delivery", "X-Request-UUID"]
) | st.text(min_size=1, max_size=20)


def check(delivery: WebhookDelivery) -> None:
    """The invariants the route relies on."""
    assert delivery.events
    assert delivery.delivery_id
    for event in delivery.events:
        assert (event.kind is EventKind.IGNORED) == bool(event.ignored_reason)
        if event.kind in (EventKind.PUSH, EventKind.TAG):
            assert event.ref.startswith(("refs/heads/", "refs/tags/"))
            assert (event.branch is None) != (event.tag is None)
        if event.kind is EventKind.MERGE_REQUEST:
            assert event.merge_request is not None
            assert event.merge_request.source_branch


def attempt(forge: str, headers: dict[str, str], body: bytes) -> None:
    try:
        delivery = receive_webhook(forge, headers, body, SECRET)
    except (WebhookSignatureInvalid, WebhookPayloadInvalid):
        return
    check(delivery)


@SETTINGS
@given(
    forge=st.sampled_from(sorted(PARSERS)),
    headers=st.dictionaries(header_names, st.text(max_size=80), max_size=6),
    body=st.binary(max_size=300),
)
def test_garbage_headers_and_bodies(forge: str, headers: dict[str, str], body: bytes) -> None:
    attempt(forge, headers, body)


@SETTINGS
@given(
    forge=st.sampled_from(FORGES),
    event=st.sampled_from(
        [
            "push",
            "pull_request",
            "Push Hook",
            "Tag Push Hook",
            "Merge Request Hook",
            "repo:push",
            "repo:refs_changed",
            "pullrequest:created",
            "pr:opened",
            "ping",
            "create",
        ]
    ),
    payload=json_values,
)
def test_signed_random_json(forge: str, event: str, payload: Any) -> None:
    body = json.dumps(payload).encode()
    attempt(forge, signed_headers(forge, event, body), body)


def mutate(data: Any, draw: Any, depth: int = 0) -> Any:
    """Replace one randomly chosen node of ``data`` (or drop a key) with random JSON; the
    root is never replaced, so most mutants get past the JSON check into the readers."""
    descend = depth == 0 or draw(st.integers(0, 3)) > 0
    if isinstance(data, dict) and data and descend:
        key = draw(st.sampled_from(sorted(data)))
        if draw(st.integers(0, 3)) == 0:
            return {k: v for k, v in data.items() if k != key}
        return data | {key: mutate(data[key], draw, depth + 1)}
    if isinstance(data, list) and data and descend:
        index = draw(st.integers(0, len(data) - 1))
        return [*data[:index], mutate(data[index], draw, depth + 1), *data[index + 1 :]]
    return draw(json_values)


@SETTINGS
@given(seed=st.sampled_from(SEEDS), data=st.data(), rounds=st.integers(1, 4))
def test_mutated_real_shaped_payloads(
    seed: tuple[str, str, dict[str, Any]], data: st.DataObject, rounds: int
) -> None:
    forge, event, payload = seed
    mutated: Any = copy.deepcopy(payload)
    for _ in range(rounds):
        mutated = mutate(mutated, data.draw)
    body = json.dumps(mutated).encode()
    attempt(forge, signed_headers(forge, event, body), body)


@SETTINGS
@given(seed=st.sampled_from(SEEDS), cut=st.integers(0, 10_000), flip=st.integers(0, 255))
def test_corrupted_bytes_of_signed_payloads(
    seed: tuple[str, str, dict[str, Any]], cut: int, flip: int
) -> None:
    forge, event, payload = seed
    body = bytearray(json.dumps(payload).encode())
    position = cut % len(body)
    body[position] ^= flip
    corrupted = bytes(body)
    attempt(forge, signed_headers(forge, event, corrupted), corrupted)
    # signed before the corruption: the signature check refuses it (GitLab signs nothing)
    if flip and forge != "gitlab":
        try:
            receive_webhook(
                forge, signed_headers(forge, event, json.dumps(payload).encode()), corrupted, SECRET
            )
        except WebhookSignatureInvalid:
            pass
        else:
            raise AssertionError("a corrupted body passed the signature check")
