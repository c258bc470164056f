"""The first admin: made by the first server start on an installation without users.

Its password is FERROUS_ADMIN_PASSWORD, or generated and printed once on stderr; later
starts, and servers starting at the same moment, make no second one.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import delete

from ferrous.application import commands as c
from ferrous.application.bootstrap import Server, bootstrap
from ferrous.application.first_admin import create_first_admin
from ferrous.domain.access import Role
from ferrous.infrastructure.settings import load_settings
from ferrous.infrastructure.sql.schema import users as user_table

LINE = re.compile(r"created the first admin: username admin, password (\S+)\n")


async def start(data_dir: Path, **settings: str) -> Server:
    return await bootstrap(load_settings({}, data_dir=data_dir, agents=0, **settings))


async def users(server: Server) -> list[tuple[str, str]]:
    assert server.identities is not None
    return [(u.username, u.role) for u in await server.identities.list_users()]


async def test_a_generated_password_is_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start(tmp_path)
    try:
        [password] = LINE.findall(capsys.readouterr().err)
        assert len(password) >= 20
        assert await users(server) == [("admin", "admin")]
        signed = await server.bus.handle(c.Login(username="admin", password=password))
        assert server.authenticator is not None
        principal = await server.authenticator.principal(signed.access_token)
        assert (principal.name, principal.role) == ("admin", Role.ADMIN)
    finally:
        await server.stop()

    again = await start(tmp_path)
    try:
        assert "first admin" not in capsys.readouterr().err
        assert await users(again) == [("admin", "admin")]
    finally:
        await again.stop()


async def test_the_configured_password_is_used_and_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start(tmp_path, admin_password="from the environment")
    try:
        err = capsys.readouterr().err
        assert (
            "created the first admin: username admin, password from FERROUS_ADMIN_PASSWORD" in err
        )
        assert "from the environment" not in err
        await server.bus.handle(c.Login(username="admin", password="from the environment"))
    finally:
        await server.stop()


async def test_servers_starting_together_make_one_admin(tmp_path: Path) -> None:
    server = await start(tmp_path, admin_password="first one")
    try:
        assert await create_first_admin(server.bus, "another one") is None  # users exist
        async with server.engine.begin() as conn:  # an empty installation again
            await conn.execute(delete(user_table))
        made = await asyncio.gather(
            create_first_admin(server.bus, "first one"),
            create_first_admin(server.bus, "second one"),
        )
        assert sorted(result is None for result in made) == [False, True]
        assert await users(server) == [("admin", "admin")]
    finally:
        await server.stop()
