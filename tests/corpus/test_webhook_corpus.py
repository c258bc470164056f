"""The webhook readers against real deliveries (``<corpus>/webhooks``, see its SOURCES.md).

* Every payload of ``index.json`` reads, with the headers a real delivery carries, into events
  or ignored-with-a-reason, never an exception; signed with a secret, it passes the full
  ``receive_webhook`` path too. What each builds is pinned (``KINDS``).
* Every ``*.expected.json`` (drone/go-scm's golden normalised parse of a payload) agrees with
  our event field by field: ref, before/after, repository, commit, sender, pull request. Where
  go-scm fills a field from somewhere else than the payload says, the difference is listed in
  ``GO_SCM_DIFFERS`` with the reason; an entry that stops differing fails, so the list stays true.
* Every vector of ``signature-vectors.json`` verifies, or is refused when it says so.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ferrous.application.webhooks import EventKind, WebhookEvent, WebhookSignatureInvalid
from ferrous.infrastructure.forges.registry import receive_webhook, webhook_parser
from tests.conftest import corpus_dir
from tests.unit.forges.helpers import HEADERS, hex_hmac

WEBHOOKS = Path("webhooks")
SECRET = "corpus-secret"

#: What each delivery is: the kind of each event, and for an ignored one words of its reason.
KINDS: dict[str, list[str]] = {
    "github/octokit__push__with-new-branch.payload.json": ["push"],
    "github/octokit__push__with-no-username-committer.payload.json": ["push"],
    "github/octokit__push__payload.json": ["ignored: tag simple-tag was deleted"],
    "github/octokit__pull_request__opened.payload.json": ["merge_request"],
    "github/octokit__pull_request__opened.with-null-body.json": ["merge_request"],
    "github/octokit__pull_request__synchronize.payload.json": ["merge_request"],
    "github/octokit__pull_request__closed.payload.json": ["ignored: 'closed'"],
    "github/octokit__create__payload.json": ["ignored: builds from its push event"],
    "github/octokit__ping__payload.json": ["ping"],
    "github/octokit__ping__with-app_id.payload.json": ["ping"],
    "github/goscm__push.json": ["push"],
    "github/goscm__push_tag.json": ["tag"],
    "github/goscm__pr_opened.json": ["merge_request"],
    "github/goscm__pr_sync.json": ["merge_request"],
    "gitlab/docs__push_hook.json": ["push"],
    "gitlab/docs__tag_push_hook.json": ["tag"],
    "gitlab/docs__merge_request_hook.json": ["merge_request"],
    "gitlab/gogitlab__pipeline.json": ["ignored: 'Pipeline Hook' starts no build"],
    "gitlab/goscm__push.json": ["push"],
    "gitlab/goscm__tag_create.json": ["tag"],
    "gitlab/goscm__pull_request_create.json": ["merge_request"],
    "gitea/goscm__push.json": ["push"],
    "gitea/goscm__tag_create.json": ["ignored: builds from its push event"],
    "gitea/goscm__pull_request_opened.json": ["merge_request"],
    "gitea/goscm__pull_request_synchronized.json": ["merge_request"],
    "gitea/goscm__pull_request_edited.json": ["ignored: 'edited'"],
    "gogs/goscm__push.json": ["push"],
    "gogs/goscm__pull_request_edited.json": ["ignored: 'edited'"],
    "bitbucket-cloud/goscm__push.json": ["push"],
    "bitbucket-cloud/goscm__pr_created.json": ["merge_request"],
    "bitbucket-server/goscm__push.json": ["push"],
    "bitbucket-server/goscm__pr_open.json": ["merge_request"],
}

#: go-scm's action words -> our kind and merge request action.
ACTIONS = {
    "opened": ("merge_request", "opened"),
    "synchronized": ("merge_request", "synchronize"),
    "updated": ("ignored", "edited"),  # a title/body edit: no new commits, no build
}

#: (golden file, field): why go-scm's value is not the payload's.
GO_SCM_DIFFERS: dict[tuple[str, str], str] = {
    **{
        (file, "Commit.Author.Login"): "GitLab commits have no login; go-scm copies the pusher's"
        for file in ("gitlab/goscm__push.expected.json", "gitlab/goscm__tag_create.expected.json")
    },
    ("gitlab/goscm__pull_request_create.expected.json", "PullRequest.Fork"): (
        "go-scm joins source.namespace, a display name ('sytses'), with the name; the source "
        "project's path is path_with_namespace 'gitlab-org/hello-world'"
    ),
    **{
        ("gitlab/goscm__pull_request_create.expected.json", f"PullRequest.Author.{field}"): (
            "a GitLab merge request payload names its author only by author_id; go-scm copies "
            "the user who acted"
        )
        for field in ("Login", "Name", "Avatar")
    },
    ("bitbucket-cloud/goscm__pr_created.expected.json", "PullRequest.Ref"): (
        "refs/pull-requests/N/from is Bitbucket Server's ref; Bitbucket Cloud has no fetchable "
        "pull request ref, so ours is empty and the source branch is fetched"
    ),
    **{
        ("bitbucket-server/goscm__push.expected.json", f"Commit.Author.{field}"): (
            "Server push payloads carry no commit author; go-scm puts the pusher and the delivery "
            "date there"
        )
        for field in ("Name", "Email", "Login", "Date")
    },
    **{
        (f"bitbucket-server/goscm__{name}.expected.json", "Repo.Branch"): (
            "Server payloads do not name the default branch; go-scm assumes 'master'"
        )
        for name in ("push", "pr_open")
    },
    **{
        (f"bitbucket-server/goscm__{name}.expected.json", field): (
            "Server payloads have no avatar; go-scm makes a Gravatar URL from the email"
        )
        for name, field in [
            ("push", "Sender.Avatar"),
            ("pr_open", "Sender.Avatar"),
            ("pr_open", "PullRequest.Author.Avatar"),
        ]
    },
}


def _index() -> list[Any]:
    root = corpus_dir()
    if root is None:
        return [pytest.param({}, marks=pytest.mark.skip(reason="real-world corpus not found"))]
    entries = json.loads((root / WEBHOOKS / "index.json").read_text())
    return [pytest.param(entry, id=entry["file"]) for entry in entries]


def _goldens() -> list[Any]:
    root = corpus_dir()
    if root is None:
        return [pytest.param("", marks=pytest.mark.skip(reason="real-world corpus not found"))]
    return sorted(
        str(p.relative_to(root / WEBHOOKS)) for p in (root / WEBHOOKS).rglob("*.expected.json")
    )


def _vectors() -> list[Any]:
    root = corpus_dir()
    if root is None:
        return [pytest.param({}, marks=pytest.mark.skip(reason="real-world corpus not found"))]
    vectors = json.loads((root / WEBHOOKS / "signature-vectors.json").read_text())["vectors"]
    return [pytest.param(v, id=f"{v['provider']}-{v.get('file', 'inline')}") for v in vectors]


def describe(event: WebhookEvent) -> str:
    return f"ignored: {event.ignored_reason}" if event.kind is EventKind.IGNORED else event.kind


def test_the_corpus_is_the_one_these_tests_know(corpus: Path) -> None:
    assert [entry.values[0]["file"] for entry in _index()] == list(KINDS)
    assert len(_goldens()) == 18
    assert len(_vectors()) == 6


@pytest.mark.parametrize("entry", _index())
def test_every_delivery_reads_with_its_headers(corpus: Path, entry: dict[str, Any]) -> None:
    body = (corpus / WEBHOOKS / entry["file"]).read_bytes()
    delivery = webhook_parser(entry["provider"]).parse(entry["headers"], body)
    assert delivery.provider == entry["provider"]
    described = [describe(event) for event in delivery.events]
    expected = KINDS[entry["file"]]
    assert len(described) == len(expected)
    for got, want in zip(described, expected, strict=True):
        head, _, words = want.partition(": ")
        assert got.startswith(head), (got, want)
        assert words in got, (got, want)
    header_names = {name.lower() for name in entry["headers"]}
    if header_names & {"x-github-delivery", "x-gitea-delivery", "x-gogs-delivery"}:
        assert not delivery.delivery_id.startswith("sha256:")
    else:
        assert delivery.delivery_id.startswith("sha256:")


@pytest.mark.parametrize("entry", _index())
def test_every_delivery_passes_the_route_path_when_signed(
    corpus: Path, entry: dict[str, Any]
) -> None:
    body = (corpus / WEBHOOKS / entry["file"]).read_bytes()
    forge = entry["provider"].partition("-")[0]  # bitbucket-cloud -> the bitbucket route
    _, signature_header, prefix = HEADERS[forge]
    signature = SECRET if prefix is None else prefix + hex_hmac(body, SECRET)
    headers = entry["headers"] | {signature_header: signature}
    delivery = receive_webhook(forge, headers, body, SECRET)
    assert [describe(e).partition(":")[0] for e in delivery.events] == [
        kind.partition(":")[0] for kind in KINDS[entry["file"]]
    ]
    with pytest.raises(WebhookSignatureInvalid):
        receive_webhook(forge, headers, body, SECRET + "x")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out |= flatten(inner, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix: value}


def observed(event: WebhookEvent) -> dict[str, Any]:
    """Our event under go-scm's field names, for the fields both have."""
    repo, sender = event.repository, event.sender
    fields: dict[str, Any] = {
        "Ref": event.ref,
        "Before": event.before,
        "After": event.after,
        "Repo.Namespace": repo.namespace,
        "Repo.Name": repo.name,
        "Repo.Branch": repo.default_branch,
        "Repo.Clone": repo.clone_url,
        "Repo.CloneSSH": repo.ssh_url,
        "Repo.Link": repo.web_url,
        "Sender.Login": sender.login,
        "Sender.Name": sender.name,
        "Sender.Email": sender.email,
        "Sender.Avatar": sender.avatar_url,
        "Ref.Name": event.tag,  # the tag hook's Ref
        "Ref.Sha": event.after,
    }
    if event.commit is not None:
        author = event.commit.author
        fields |= {
            "Commit.Sha": event.commit.sha,
            "Commit.Message": event.commit.message,
            "Commit.Author.Name": author.name,
            "Commit.Author.Email": author.email,
            "Commit.Author.Login": author.login,
            "Commit.Author.Date": event.commit.timestamp,
        }
    mr = event.merge_request
    if mr is not None:
        fields |= {
            "PullRequest.Number": mr.number,
            "PullRequest.Title": mr.title,
            "PullRequest.Body": mr.description,
            "PullRequest.Sha": mr.source_sha,
            "PullRequest.Ref": mr.ref,
            "PullRequest.Source": mr.source_branch,
            "PullRequest.Target": mr.target_branch,
            "PullRequest.Fork": mr.source_repository,
            "PullRequest.Link": mr.web_url,
            "PullRequest.Base.Sha": mr.target_sha,
            "PullRequest.Base.Name": mr.target_branch,
            "PullRequest.Head.Sha": mr.source_sha,
            "PullRequest.Head.Name": mr.source_branch,
            "PullRequest.Author.Login": mr.author.login,
            "PullRequest.Author.Name": mr.author.name,
            "PullRequest.Author.Email": mr.author.email,
            "PullRequest.Author.Avatar": mr.author.avatar_url,
        }
    return fields


def same(field: str, want: Any, got: Any) -> bool:
    if field.endswith("Date") and want and got:
        return datetime.fromisoformat(want) == datetime.fromisoformat(got)
    return bool(want == got)


@pytest.mark.parametrize("golden", _goldens())
def test_go_scm_golden_output(corpus: Path, golden: str) -> None:
    root = corpus / WEBHOOKS
    payload_file = golden.replace(".expected.json", ".json")
    entry = next(
        e for e in json.loads((root / "index.json").read_text()) if e["file"] == payload_file
    )
    delivery = webhook_parser(entry["provider"]).parse(
        entry["headers"], (root / payload_file).read_bytes()
    )
    event = delivery.events[0]
    expected = flatten(json.loads((root / golden).read_text()))
    if "Action" in expected and "PullRequest.Number" in expected:
        assert (event.kind, event.merge_request and event.merge_request.action) == ACTIONS[
            expected["Action"]
        ]
    ours = observed(event)
    compared = differing = 0
    for field, want in expected.items():
        if field not in ours or want == "0001-01-01T00:00:00Z":
            continue  # not a field we keep (Perm, Created, Link of a commit), or unset in go-scm
        reason = GO_SCM_DIFFERS.get((golden, field))
        if reason is None:
            assert same(field, want, ours[field]), f"{field}: go-scm {want!r}, ours {ours[field]!r}"
            compared += 1
        else:
            assert not same(field, want, ours[field]), f"{field} agrees now; drop: {reason}"
            differing += 1
    assert compared >= 12, (compared, differing)
    assert differing == sum(1 for file, _ in GO_SCM_DIFFERS if file == golden)


@pytest.mark.parametrize("vector", _vectors())
def test_signature_vectors(corpus: Path, vector: dict[str, Any]) -> None:
    body = (
        (corpus / WEBHOOKS / vector["file"]).read_bytes()
        if "file" in vector
        else vector["body"].encode()
    )
    forge = vector["provider"].partition("-")[0]
    parser = webhook_parser(forge)
    if vector.get("kind") == "negative":
        headers = {vector["header"]: vector["expected_reject"]}
        with pytest.raises(WebhookSignatureInvalid, match="does not match"):
            parser.verify(headers, body, vector["secret"])
    else:
        parser.verify({vector["header"]: vector["expected"]}, body, vector["secret"])
        with pytest.raises(WebhookSignatureInvalid):
            parser.verify({vector["header"]: vector["expected"]}, body + b"\n", vector["secret"])
