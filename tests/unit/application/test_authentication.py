"""The authenticator names callers from access and API tokens, and nothing else.

The other tokens of the system (agent, agent registration, trigger and refresh tokens) and
anything tampered with are ``InvalidCredentials``. Answers are cached for a few seconds,
and ``forget`` makes a logout or a revocation count at this server's next request.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.authentication import Authenticator
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.access import Role
from ferrous.domain.errors import InvalidCredentials
from ferrous.domain.trigger_token import TriggerToken
from ferrous.infrastructure.security.access_tokens import JwtAccessTokens
from tests.unit.application.conftest import T0
from tests.unit.application.identities import KEY, Identities, as_principal, identities


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return identities(tmp_path)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_the_other_tokens_of_the_system_name_nobody(ids: Identities) -> None:
    await ids.user("ada")
    signed = await ids.login()
    _agent, agent_token = await ids.bus.handle(
        c.RegisterAgent(name="builder", labels=(), capacity=1)
    )
    _registration, registration_token = await ids.bus.handle(c.CreateRegistrationToken())
    trigger = "ftt_" + "t" * 43
    async with ids.bus.uow_factory() as uow:
        await uow.trigger_tokens.add(
            TriggerToken.issue(project_id="p", token_hash=hash_token(trigger), now=T0)
        )
        await uow.commit()
    header, claims, signature = signed.access_token.split(".")
    as_admin = _b64({**json.loads(base64.urlsafe_b64decode(claims + "==")), "role": "admin"})
    unsigned = _b64({"alg": "none", "typ": "JWT"})

    for token in [
        agent_token,
        registration_token,
        trigger,
        signed.refresh_token,
        "",
        "garbage",
        "a.b.c",
        f"{header}.{as_admin}.{signature}",  # tampered claims
        f"{unsigned}.{claims}.",  # alg: none
        signed.access_token[:-2] + ("AA" if not signed.access_token.endswith("AA") else "BB"),
    ]:
        with pytest.raises(InvalidCredentials):
            await ids.authenticator.principal(token)
    assert (await ids.authenticator.principal(signed.access_token)).name == "ada"


async def test_without_a_token_signer_access_tokens_are_refused(ids: Identities) -> None:
    await ids.user("ada")
    signed = await ids.login()
    blind = Authenticator(ids.bus.uow_factory, None, ids.clock)
    with pytest.raises(InvalidCredentials):
        await blind.principal(signed.access_token)


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_answers_are_cached_briefly_and_forgotten_on_demand(ids: Identities) -> None:
    ada = await ids.user("ada")
    signed = await ids.login()
    plain = await ids.api_token(ada)
    monotonic = Monotonic()
    cached = Authenticator(
        ids.bus.uow_factory,
        JwtAccessTokens(KEY),
        ids.clock,
        cache_seconds=5,
        monotonic=monotonic,
    )
    assert (await cached.principal(signed.access_token)).id == ada.id
    assert (await cached.principal(plain)).id == ada.id

    # changed behind the authenticator's back: the cache still answers, for a while
    ids.store.users[ada.id].role = Role.VIEWER
    assert (await cached.principal(plain)).role == Role.DEVELOPER
    monotonic.now += 5
    assert (await cached.principal(plain)).role == Role.VIEWER
    assert (await cached.principal(signed.access_token)).role == Role.VIEWER

    # a logout on this server counts at the next request
    await ids.bus.handle(c.Logout(user_id=ada.id, session_id=signed.session_id))
    assert (await cached.principal(signed.access_token)).id == ada.id  # not told yet
    cached.forget(signed.session_id)
    with pytest.raises(InvalidCredentials):
        await cached.principal(signed.access_token)

    # and a revocation, by the token's id
    [token] = ids.store.api_tokens.values()
    await ids.bus.handle(c.RevokeApiToken(actor=as_principal(ada), token_id=token.id))
    cached.forget(token.id)
    with pytest.raises(InvalidCredentials):
        await cached.principal(plain)


async def test_a_cached_token_still_expires_on_time(ids: Identities) -> None:
    ada = await ids.user("ada")
    plain = await ids.api_token(ada, expires_in=timedelta(seconds=2))
    cached = Authenticator(
        ids.bus.uow_factory,
        JwtAccessTokens(KEY),
        ids.clock,
        cache_seconds=60,
        monotonic=Monotonic(),
    )
    await cached.principal(plain)
    ids.clock.advance(seconds=2)
    with pytest.raises(InvalidCredentials, match="expired"):
        await cached.principal(plain)
