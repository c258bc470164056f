"""A bus that can sign people in, on the in-memory adapters, for the identity tests.

Passwords are hashed with real Argon2id at its cheapest parameters and access tokens
signed with a real key; the clock is the tests' ``FakeClock``. ``Identities`` also holds
an ``Authenticator`` without a cache, and short ways to make users and sign them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2.profiles import CHEAPEST

from ferrous.application import commands as c
from ferrous.application.authentication import Authenticator
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.use_cases.sign_in import SignedIn
from ferrous.domain.access import Principal, PrincipalKind, Role
from ferrous.domain.user import User
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryIdentityQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.security.access_tokens import JwtAccessTokens
from ferrous.infrastructure.security.passwords import Argon2PasswordHasher
from tests.unit.application.conftest import FakeClock

KEY = b"k" * 32
PASSWORD = "correct horse battery"


@dataclass
class Identities:
    store: InMemoryStore
    bus: MessageBus
    clock: FakeClock
    authenticator: Authenticator
    queries: InMemoryIdentityQueries

    async def user(
        self, username: str = "ada", role: Role = Role.DEVELOPER, password: str = PASSWORD
    ) -> User:
        user, _ = await self.bus.handle(
            c.CreateUser(username=username, role=role, password=password)
        )
        return self.store.users[user.id]

    async def login(self, username: str = "ada", password: str = PASSWORD) -> SignedIn:
        signed: SignedIn = await self.bus.handle(c.Login(username=username, password=password))
        return signed

    async def api_token(self, user: User, **fields: Any) -> str:
        _token, plain = await self.bus.handle(
            c.CreateApiToken(actor=as_principal(user), name=fields.pop("name", "cli"), **fields)
        )
        return str(plain)


def as_principal(user: User) -> Principal:
    return Principal(kind=PrincipalKind.USER, id=user.id, name=user.username, role=user.role)


def identities(tmp_path: Path, clock: FakeClock | None = None, **deps: Any) -> Identities:
    store = InMemoryStore()
    clock = clock or FakeClock()
    dependencies = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        passwords=Argon2PasswordHasher(CHEAPEST),
        access_tokens=JwtAccessTokens(KEY),
        **deps,
    )
    bus = MessageBus(memory_uow_factory(store), dependencies)
    authenticator = Authenticator(
        bus.uow_factory, dependencies.access_tokens, clock, cache_seconds=0
    )
    return Identities(store, bus, clock, authenticator, InMemoryIdentityQueries(store))
