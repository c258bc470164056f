"""Verification: every forge's good signature passes; missing, wrong, downgraded or unkeyed fail.

All failures are ``WebhookSignatureInvalid`` (401 at the API); a project without a secret is
its subclass ``WebhookSecretMissing``, whatever the forge sends.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ferrous.application.webhooks import WebhookSecretMissing, WebhookSignatureInvalid
from ferrous.infrastructure.forges.registry import PARSERS, webhook_parser
from ferrous.infrastructure.forges.signatures import hmac_sha256_hex
from tests.unit.forges.helpers import HEADERS, SECRET, hex_hmac, signed_headers

BODY = b'{"zen": "Keep it logically awesome."}'
FORGES = sorted(HEADERS)
HMAC_FORGES = [forge for forge in FORGES if HEADERS[forge][2] is not None]


def verify(forge: str, headers: dict[str, str], secret: str | None = SECRET) -> None:
    webhook_parser(forge).verify(headers, BODY, secret)


@pytest.mark.parametrize("forge", FORGES)
def test_a_good_signature_passes(forge: str) -> None:
    verify(forge, signed_headers(forge, "push", BODY))


@pytest.mark.parametrize("forge", FORGES)
def test_header_names_match_in_any_case(forge: str) -> None:
    headers = {name.lower(): value for name, value in signed_headers(forge, "x", BODY).items()}
    verify(forge, headers)
    verify(forge, {name.upper(): value for name, value in headers.items()})


@pytest.mark.parametrize("forge", FORGES)
def test_a_missing_signature_fails(forge: str) -> None:
    headers = signed_headers(forge, "push", BODY)
    del headers[HEADERS[forge][1]]
    with pytest.raises(WebhookSignatureInvalid, match="missing"):
        verify(forge, headers)


@pytest.mark.parametrize("forge", FORGES)
def test_another_secret_fails(forge: str) -> None:
    with pytest.raises(WebhookSignatureInvalid, match="does not match"):
        verify(forge, signed_headers(forge, "push", BODY, secret="other"))


@pytest.mark.parametrize("forge", HMAC_FORGES)
def test_a_changed_body_fails(forge: str) -> None:
    headers = signed_headers(forge, "push", BODY)
    with pytest.raises(WebhookSignatureInvalid):
        webhook_parser(forge).verify(headers, BODY + b" ", SECRET)


@pytest.mark.parametrize("forge", FORGES)
@pytest.mark.parametrize("secret", [None, ""])
def test_a_project_without_secret_refuses_everything(forge: str, secret: str | None) -> None:
    headers = signed_headers(forge, "push", BODY, secret="")
    with pytest.raises(WebhookSecretMissing):
        verify(forge, headers, secret)
    # even when the forge sends no signature at all: the missing secret is the reason
    with pytest.raises(WebhookSecretMissing):
        verify(forge, {HEADERS[forge][0]: "push"}, secret)


@pytest.mark.parametrize("forge", ["github", "bitbucket"])
@pytest.mark.parametrize(
    "value",
    [
        "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
        "sha512=" + hex_hmac(BODY),
        hex_hmac(BODY),  # the right digest without its prefix
        "",
    ],
)
def test_a_wrong_algorithm_prefix_fails(forge: str, value: str) -> None:
    headers = signed_headers(forge, "push", BODY)
    headers[HEADERS[forge][1]] = value
    with pytest.raises(WebhookSignatureInvalid, match="must start with 'sha256='"):
        verify(forge, headers)


def test_github_refuses_the_legacy_sha1_header_alone() -> None:
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    with pytest.raises(WebhookSignatureInvalid, match="missing signature header"):
        verify("github", {"X-GitHub-Event": "push", "X-Hub-Signature": sha1})


def test_github_accepts_upper_case_hex_and_surrounding_spaces() -> None:
    verify("github", {"X-Hub-Signature-256": f"  sha256={hex_hmac(BODY).upper()} "})


@pytest.mark.parametrize("forge", ["gitea", "gogs"])
def test_a_prefixed_digest_in_a_bare_hex_header_fails(forge: str) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify(forge, {HEADERS[forge][1]: "sha256=" + hex_hmac(BODY)})


def test_forgejo_header_is_checked_first_and_not_rescued_by_gitea_header() -> None:
    good, bad = hex_hmac(BODY), hex_hmac(BODY, "other")
    verify("gitea", {"X-Forgejo-Signature": good, "X-Gitea-Signature": bad})
    with pytest.raises(WebhookSignatureInvalid, match="X-Forgejo-Signature"):
        verify("gitea", {"X-Forgejo-Signature": bad, "X-Gitea-Signature": good})


def test_gitea_and_forgejo_accept_each_others_headers() -> None:
    verify("forgejo", {"X-Gitea-Signature": hex_hmac(BODY)})
    verify("gitea", {"X-Forgejo-Signature": hex_hmac(BODY)})


def test_gogs_does_not_accept_gitea_header() -> None:
    with pytest.raises(WebhookSignatureInvalid, match="missing"):
        verify("gogs", {"X-Gitea-Signature": hex_hmac(BODY)})


def test_gitlab_token_is_compared_exactly() -> None:
    verify("gitlab", {"X-Gitlab-Token": SECRET})
    for near in (SECRET + " ", SECRET.upper(), SECRET[:-1], ""):
        with pytest.raises(WebhookSignatureInvalid):
            verify("gitlab", {"X-Gitlab-Token": near})


def test_gitlab_token_with_non_ascii_matches_as_asgi_servers_decode_it() -> None:
    secret = "clé-secrète"
    as_received = secret.encode().decode("latin-1")  # what Starlette hands over
    verify("gitlab", {"X-Gitlab-Token": as_received}, secret)
    verify("gitlab", {"X-Gitlab-Token": secret}, secret)


@pytest.mark.parametrize("forge", FORGES)
@pytest.mark.parametrize("value", ["sha256=ünïcödé", "\udcff", "sha256=" + "\x00" * 64])
def test_garbage_signature_values_fail_cleanly(forge: str, value: str) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify(forge, {HEADERS[forge][1]: value})


def test_the_secret_keys_the_hmac_as_utf8() -> None:
    # GitHub's documented vector (also in the corpus): "It's a Secret to Everybody"
    digest = hmac_sha256_hex("It's a Secret to Everybody", b"Hello, World!")
    assert digest == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_every_registered_forge_has_a_signature_test() -> None:
    assert set(PARSERS) - set(HEADERS) == {"bitbucket-cloud", "bitbucket-server"}
