"""Deliveries that cannot be read: each is a WebhookPayloadInvalid that says why (HTTP 400)."""

from __future__ import annotations

import json

import pytest

from ferrous.application.webhooks import (
    UnknownForge,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.forges.registry import receive_webhook, webhook_parser
from tests.unit.forges.helpers import HEADERS, SECRET, deliver, signed_headers

FORGES = sorted(HEADERS)
#: an event each forge reads fields of, so a body of the wrong shape is noticed
READ_EVENTS = {
    "github": "push",
    "gitlab": "Push Hook",
    "gitea": "push",
    "forgejo": "push",
    "gogs": "push",
    "bitbucket": "repo:push",
}


@pytest.mark.parametrize("forge", FORGES)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"{", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'"push"', "JSON str, not an object"),
        (b"null", "JSON NoneType, not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON"),
    ],
)
def test_unreadable_bodies(forge: str, body: bytes, reason: str) -> None:
    with pytest.raises(WebhookPayloadInvalid, match=reason):
        deliver(forge, READ_EVENTS[forge], body)


@pytest.mark.parametrize("forge", FORGES)
def test_a_missing_event_header(forge: str) -> None:
    body = b"{}"
    headers = signed_headers(forge, "push", body)
    del headers[HEADERS[forge][0]]
    with pytest.raises(WebhookPayloadInvalid, match="missing event header"):
        receive_webhook(forge, headers, body, SECRET)


@pytest.mark.parametrize("forge", FORGES)
@pytest.mark.parametrize("name", ["", "   ", "push\nX-Injected: 1", "<script>", "9push", "x" * 65])
def test_a_garbled_event_header(forge: str, name: str) -> None:
    with pytest.raises(WebhookPayloadInvalid, match="event"):
        deliver(forge, name, {})


@pytest.mark.parametrize(
    ("forge", "event", "payload", "field"),
    [
        ("github", "push", {}, r"\$\.ref: missing"),
        ("github", "push", {"ref": 7}, r"\$\.ref: expected a string, found int"),
        ("github", "push", {"ref": "refs/heads/x", "commits": "many"}, r"\$\.commits"),
        (
            "github",
            "push",
            {
                "ref": "refs/heads/x",
                "commits": [{"id": "a", "added": "f"}],
                "before": "b" * 40,
                "after": "a" * 40,
            },
            r"\.added",
        ),
        (
            "github",
            "push",
            {"ref": "refs/heads/x", "after": "a" * 40, "repository": []},
            r"\$\.repository",
        ),
        ("github", "pull_request", {"action": "opened"}, r"\$\.pull_request: missing"),
        (
            "github",
            "pull_request",
            {"action": "opened", "pull_request": {"number": True}},
            r"\$\.pull_request\.head: missing",
        ),
        (
            "github",
            "pull_request",
            {
                "action": "opened",
                "pull_request": {"number": "seven", "head": {"ref": "a"}, "base": {"ref": "b"}},
            },
            r"\$\.pull_request\.number: expected a positive integer",
        ),
        (
            "gitlab",
            "Merge Request Hook",
            {"object_attributes": {"iid": 1}},
            r"source_branch: missing",
        ),
        (
            "gitlab",
            "Push Hook",
            {"ref": "refs/heads/x", "after": "a" * 40, "project": "p"},
            r"\$\.project",
        ),
        (
            "gogs",
            "pull_request",
            {"action": "opened", "pull_request": {"number": 1}},
            r"head_branch: missing",
        ),
        (
            "bitbucket",
            "repo:push",
            {"push": {"changes": [{"new": {"type": "branch"}}]}},
            r"\$\.push\.changes\[0\]\.new\.name: missing",
        ),
        ("bitbucket", "pr:opened", {"pullRequest": {"id": 1}}, r"fromRef: missing"),
    ],
)
def test_fields_of_the_wrong_shape_are_named(
    forge: str, event: str, payload: dict[str, object], field: str
) -> None:
    with pytest.raises(WebhookPayloadInvalid, match=field):
        deliver(forge, event, payload)


def test_a_form_body_without_payload() -> None:
    with pytest.raises(WebhookPayloadInvalid, match="no 'payload' field"):
        deliver(
            "github", "push", b"other=1", **{"Content-Type": "application/x-www-form-urlencoded"}
        )


def test_an_unknown_forge_is_not_found() -> None:
    with pytest.raises(UnknownForge, match="unknown forge 'svn'") as caught:
        webhook_parser("svn")
    assert isinstance(caught.value, NotFound)


def test_the_signature_is_checked_before_the_body_is_read() -> None:
    headers = signed_headers("github", "push", b"{}")
    with pytest.raises(WebhookSignatureInvalid):
        receive_webhook("github", headers, b"not json", SECRET)


def test_valid_json_that_is_not_utf8_encoded_is_read() -> None:
    body = json.dumps({"zen": "ok"}).encode("utf-16")
    assert deliver("github", "ping", body).events[0].kind == "ping"


GOOD_PUSH = {"ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40}


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"ref": "refs/heads/-x"}, "ref"),  # a branch git would refuse; also an option
        ({"ref": "refs/heads/a..b"}, "ref"),
        ({"ref": "refs/heads/a b"}, "ref"),
        ({"ref": "refs/heads/x\n"}, "ref"),
        ({"ref": "refs/heads/.hidden"}, "ref"),
        ({"ref": "refs/heads/x.lock"}, "ref"),
        ({"after": "--upload-pack=touch /tmp/pwned"}, "after"),
        ({"after": "HEAD"}, "after"),
        ({"before": "b" * 40 + "; rm"}, "before"),
        ({"head_commit": {"id": "-c core.sshCommand=x"}}, "head commit"),
    ],
)
def test_refs_and_shas_unfit_for_git_are_refused(change: dict[str, object], what: str) -> None:
    with pytest.raises(WebhookPayloadInvalid, match=f"^{what} "):
        deliver("github", "push", GOOD_PUSH | change)


@pytest.mark.parametrize(
    ("head", "number"),
    [
        ({"ref": "--help", "sha": "c" * 40}, 1),
        ({"ref": "feature", "sha": "not-a-sha"}, 1),
        ({"ref": "feature", "sha": "c" * 40}, 0),
        ({"ref": "feature", "sha": "c" * 40}, -3),
    ],
)
def test_pull_requests_with_unfit_values_are_refused(head: dict[str, str], number: int) -> None:
    payload = {
        "action": "opened",
        "pull_request": {"number": number, "head": head, "base": {"ref": "main", "sha": "a" * 40}},
    }
    with pytest.raises(WebhookPayloadInvalid):
        deliver("github", "pull_request", payload)


def test_a_push_without_after_is_refused_not_read_as_a_deletion() -> None:
    with pytest.raises(WebhookPayloadInvalid, match=r"\$\.after: missing"):
        deliver("github", "push", {"ref": "refs/heads/main", "before": "a" * 40})
