"""Repository URLs and credentials: kinds, checks, and text cleaned of secrets."""

from __future__ import annotations

import pytest

from ferrous.domain.errors import InvalidValue
from ferrous.domain.repo_credentials import (
    CredentialKind,
    RepoCredentials,
    SealedCredentials,
    default_username,
    scrub,
    url_host,
    url_scheme,
    without_userinfo,
)

KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("url", "scheme", "host"),
    [
        ("https://user:pw@git.example.com:8443/a/b.git", "https", "git.example.com:8443"),
        ("http://127.0.0.1:9000/repo.git", "http", "127.0.0.1:9000"),
        ("ssh://git@example.com:2222/srv/repo.git", "ssh", "example.com:2222"),
        ("git@github.com:org/repo.git", "ssh", "github.com"),
        ("git://127.0.0.1:9418/repo.git", "git", "127.0.0.1:9418"),
        ("file:///srv/repo.git", "file", ""),
        ("/srv/repo.git", "file", ""),
        ("./with:colon", "file", ""),
    ],
)
def test_url_kinds(url: str, scheme: str, host: str) -> None:
    assert url_scheme(url) == scheme
    assert url_host(url) == host


def test_userinfo_is_dropped_from_shown_urls_but_ssh_users_stay() -> None:
    assert without_userinfo("https://oauth2:tok@h/x.git") == "https://h/x.git"
    assert without_userinfo("ssh://git@h/x.git") == "ssh://git@h/x.git"
    assert default_username("https://github.com/o/r.git") == "x-access-token"
    assert default_username("https://gitlab.com/o/r.git") == "oauth2"


def test_scrub_masks_secrets_and_userinfo() -> None:
    text = "fatal: unable to access 'https://oauth2:tok3n-value@h/x.git/': tok3n-value refused"
    assert (
        scrub(text, ("tok3n-value",))
        == "fatal: unable to access 'https://h/x.git/': [MASKED] refused"
    )
    assert "b3BlbnNz" not in scrub(f"key was {KEY}", (KEY,))


def test_values_round_trip_and_hide_their_secrets() -> None:
    token = RepoCredentials.from_json({"kind": "https_token", "token": "t0ken", "username": "ci"})
    key = RepoCredentials.from_json({"kind": "ssh_key", "private_key": KEY})
    assert RepoCredentials.from_json(token.to_json()) == token
    assert RepoCredentials.from_json(key.to_json()) == key
    assert "t0ken" not in repr(token)
    assert "b3BlbnNz" not in repr(key)
    assert token.fingerprint() != key.fingerprint()
    sealed = SealedCredentials(kind=CredentialKind.SSH_KEY, sealed="opaque")
    assert SealedCredentials.from_text(sealed.to_text()) == sealed
    assert "opaque" not in repr(sealed)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "password"}, "kind must be one of"),
        ({"kind": "https_token", "token": ""}, "token of one line"),
        ({"kind": "https_token", "token": "a\nb"}, "token of one line"),
        ({"kind": "https_token", "token": "t", "username": "a:b"}, "username"),
        ({"kind": "ssh_key", "private_key": "not a key"}, "private key"),
    ],
)
def test_unusable_values_are_refused(data: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        RepoCredentials.from_json(data)
