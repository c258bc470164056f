"""API tokens through the bus and the authenticator, on the in-memory adapters.

A personal token acts as its person with their role now, and stops with their account; a
service token (admins make them) acts with its scopes only and outlives its maker's
account; revoked and expired tokens are refused; ``last_used_at`` is stamped once a minute.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.access import Principal, PrincipalKind, Role
from ferrous.domain.api_token import ApiTokenKind
from ferrous.domain.errors import InvalidCredentials, InvalidValue, NotFound, PermissionDenied
from tests.unit.application.conftest import T0
from tests.unit.application.identities import Identities, as_principal, identities


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return identities(tmp_path)


async def test_a_personal_token_acts_as_its_person(ids: Identities) -> None:
    ada = await ids.user("ada", Role.DEVELOPER)
    token, plain = await ids.bus.handle(
        c.CreateApiToken(actor=as_principal(ada), name=" laptop ", expires_in=timedelta(days=30))
    )

    assert plain.startswith("fpt_")
    assert len(plain) > 40
    stored = ids.store.api_tokens[token.id]
    assert stored.token_hash == hash_token(plain)
    assert (stored.name, stored.kind, stored.prefix) == (
        "laptop",
        ApiTokenKind.PERSONAL,
        plain[:12],
    )
    assert (stored.scopes, stored.expires_at) == (frozenset(), T0 + timedelta(days=30))
    assert plain not in repr(ids.store)

    principal = await ids.authenticator.principal(plain)
    assert principal == Principal(
        kind=PrincipalKind.USER, id=ada.id, name="ada", role=Role.DEVELOPER, token_id=token.id
    )
    assert (await ids.authenticator.authenticate(plain)).session_id is None
    [view] = await ids.queries.list_api_tokens(user_id=ada.id)
    assert (view.id, view.prefix, view.kind) == (token.id, plain[:12], "personal")
    assert not hasattr(view, "token_hash")


async def test_a_use_is_stamped_at_most_once_a_minute(ids: Identities) -> None:
    ada = await ids.user("ada")
    plain = await ids.api_token(ada)
    [token_id] = ids.store.api_tokens

    await ids.authenticator.principal(plain)
    assert ids.store.api_tokens[token_id].last_used_at == T0
    ids.clock.advance(seconds=59)
    await ids.authenticator.principal(plain)
    assert ids.store.api_tokens[token_id].last_used_at == T0
    ids.clock.advance(seconds=2)
    await ids.authenticator.principal(plain)
    assert ids.store.api_tokens[token_id].last_used_at == T0 + timedelta(seconds=61)


async def test_a_personal_token_follows_its_person(ids: Identities) -> None:
    await ids.user("root", Role.ADMIN)
    ada = await ids.user("ada", Role.ADMIN)
    plain = await ids.api_token(ada)

    await ids.bus.handle(c.UpdateUser(user_id=ada.id, role="viewer"))
    assert (await ids.authenticator.principal(plain)).role == Role.VIEWER
    await ids.bus.handle(c.UpdateUser(user_id=ada.id, active=False))
    with pytest.raises(InvalidCredentials, match="deactivated"):
        await ids.authenticator.principal(plain)
    await ids.bus.handle(c.UpdateUser(user_id=ada.id, active=True))
    assert (await ids.authenticator.principal(plain)).id == ada.id


async def test_admins_make_service_tokens_with_scopes(ids: Identities) -> None:
    root = await ids.user("root", Role.ADMIN)
    token, plain = await ids.bus.handle(
        c.CreateApiToken(
            actor=as_principal(root),
            name="deploy bot",
            kind=ApiTokenKind.SERVICE,
            scopes=frozenset({"builds:trigger", "builds:read"}),
        )
    )

    assert plain.startswith("fst_")
    principal = await ids.authenticator.principal(plain)
    assert (principal.kind, principal.id, principal.name) == (
        PrincipalKind.SERVICE,
        token.id,
        "deploy bot",
    )
    assert principal.role == Role.SERVICE
    assert principal.scopes == {"builds:trigger", "builds:read"}
    assert principal.may("builds:trigger")
    assert not principal.may("builds:cancel")
    assert not principal.may("account")

    other = await ids.user("ada", Role.ADMIN)  # the maker leaves; the bot keeps working
    await ids.bus.handle(c.UpdateUser(user_id=root.id, active=False))
    assert (await ids.authenticator.principal(plain)).id == token.id
    views = await ids.queries.list_api_tokens(kind=ApiTokenKind.SERVICE)
    assert [(v.id, v.user_id, v.scopes) for v in views] == [
        (token.id, root.id, ["builds:read", "builds:trigger"])
    ]
    assert other.id != root.id


@pytest.mark.parametrize(
    ("role", "kind", "scopes", "error"),
    [
        (Role.DEVELOPER, ApiTokenKind.SERVICE, {"builds:read"}, PermissionDenied),
        (Role.ADMIN, ApiTokenKind.SERVICE, set(), InvalidValue),
        (Role.ADMIN, ApiTokenKind.SERVICE, {"account"}, InvalidValue),
        (Role.ADMIN, ApiTokenKind.SERVICE, {"agent:protocol"}, InvalidValue),
        (Role.ADMIN, ApiTokenKind.SERVICE, {"builds:fly"}, InvalidValue),
        (Role.ADMIN, ApiTokenKind.PERSONAL, {"builds:read"}, InvalidValue),
    ],
)
async def test_what_a_token_may_not_be(
    ids: Identities, role: Role, kind: ApiTokenKind, scopes: set[str], error: type[Exception]
) -> None:
    user = await ids.user("ada", role)
    with pytest.raises(error):
        await ids.bus.handle(
            c.CreateApiToken(
                actor=as_principal(user), name="x", kind=kind, scopes=frozenset(scopes)
            )
        )
    with pytest.raises(InvalidValue):
        await ids.bus.handle(c.CreateApiToken(actor=as_principal(user), name="  "))
    with pytest.raises(InvalidValue, match="not in the future"):
        await ids.bus.handle(c.CreateApiToken(actor=as_principal(user), name="x", expires_at=T0))
    assert ids.store.api_tokens == {}


async def test_only_a_person_makes_tokens(ids: Identities) -> None:
    root = await ids.user("root", Role.ADMIN)
    service = Principal(
        kind=PrincipalKind.SERVICE, id="t", name="bot", role=Role.SERVICE, scopes=frozenset()
    )
    with pytest.raises(PermissionDenied):
        await ids.bus.handle(c.CreateApiToken(actor=service, name="x"))
    await ids.user("ada", Role.ADMIN)
    await ids.bus.handle(c.UpdateUser(user_id=root.id, active=False))
    with pytest.raises(PermissionDenied, match="deactivated"):
        await ids.bus.handle(c.CreateApiToken(actor=as_principal(root), name="x"))


async def test_revoked_and_expired_tokens_are_refused(ids: Identities) -> None:
    ada = await ids.user("ada")
    bob = await ids.user("bob")
    root = await ids.user("root", Role.ADMIN)
    mine = await ids.api_token(ada, name="mine")
    expiring = await ids.api_token(ada, name="short", expires_in=timedelta(hours=1))
    bobs = await ids.api_token(bob, name="bob's")
    ids_by_name = {t.name: t.id for t in ids.store.api_tokens.values()}

    with pytest.raises(NotFound):  # not hers, and she is no admin
        await ids.bus.handle(
            c.RevokeApiToken(actor=as_principal(ada), token_id=ids_by_name["bob's"])
        )
    await ids.bus.handle(c.RevokeApiToken(actor=as_principal(ada), token_id=ids_by_name["mine"]))
    await ids.bus.handle(c.RevokeApiToken(actor=as_principal(root), token_id=ids_by_name["bob's"]))
    await ids.bus.handle(c.RevokeApiToken(actor=as_principal(ada), token_id=ids_by_name["mine"]))
    with pytest.raises(InvalidCredentials, match="revoked"):
        await ids.authenticator.principal(mine)
    with pytest.raises(InvalidCredentials, match="revoked"):
        await ids.authenticator.principal(bobs)

    assert (await ids.authenticator.principal(expiring)).id == ada.id
    ids.clock.advance(hours=1)
    with pytest.raises(InvalidCredentials, match="expired"):
        await ids.authenticator.principal(expiring)
    with pytest.raises(InvalidCredentials):  # a token of the right form that never existed
        await ids.authenticator.principal(mine[:-4] + "AAAA")
