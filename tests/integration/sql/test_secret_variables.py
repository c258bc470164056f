"""Secret variables: repository contract and read side on SQLite, PostgreSQL and memory.

Rows hold the secret box's sealed text, never the value; names are unique per owner (the
instance's too, whose ``project_id`` is NULL); a set racing another for a new name loses
with ``Conflict``, which the use case turns into a re-run that replaces.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.secret_variables import open_value, seal_value
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.secret_variable import SecretVariable
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, KeyRing
from ferrous.infrastructure.sql.schema import secret_variables
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, new_build, seed_pipeline

VALUE = "dk_live_7f3a9c2e5b1d4f8a0c6e2b9d7f1a3c5e"
BOX = AesGcmSecretBox(KeyRing([secrets.token_bytes(32)]))


def new_secret(project_id: str | None, name: str = "DEPLOY_KEY", **fields: Any) -> SecretVariable:
    return SecretVariable.create(
        project_id=project_id,
        name=name,
        sealed=seal_value(fields.pop("value", VALUE), project_id, name, BOX),
        protected=fields.pop("protected", False),
        masked=fields.pop("masked", True),
        now=T0,
        **fields,
    )


async def add(storage: Storage, *found: SecretVariable) -> None:
    async with storage.uow_factory() as uow:
        for secret in found:
            await uow.secret_variables.add(secret)
        await uow.commit()


async def test_round_trip_replace_and_remove(storage: Storage) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    own = new_secret(project.id, protected=True, created_by="alice")
    instance = new_secret(None, value="instance-value")
    other = new_secret(project.id, name="A_FIRST", masked=False)
    await add(storage, own, instance, other)

    async with storage.uow_factory() as uow:
        assert await uow.secret_variables.find(project.id, "DEPLOY_KEY") == own
        assert await uow.secret_variables.find(None, "DEPLOY_KEY") == instance
        assert await uow.secret_variables.find(project.id, "NOPE") is None
        assert await uow.secret_variables.list_for(project.id) == [other, own]  # by name
        assert await uow.secret_variables.list_for(None) == [instance]
    loaded = await _find(storage, project.id, "DEPLOY_KEY")
    assert open_value(loaded, BOX) == VALUE
    assert loaded.created_at.utcoffset() is not None

    sealed = seal_value("replaced-value", project.id, "DEPLOY_KEY", BOX)
    loaded.replace(sealed=sealed, protected=False, masked=False, now=at(60))
    async with storage.uow_factory() as uow:
        await uow.secret_variables.save(loaded)
        await uow.commit()
    assert await _find(storage, project.id, "DEPLOY_KEY") == loaded

    async with storage.uow_factory() as uow:
        await uow.secret_variables.remove(loaded)
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert await uow.secret_variables.list_for(project.id) == [other]
        with pytest.raises(NotFound):
            await uow.secret_variables.remove(loaded)
        with pytest.raises(NotFound):
            await uow.secret_variables.save(loaded)


async def _find(storage: Storage, project_id: str | None, name: str) -> SecretVariable:
    async with storage.uow_factory() as uow:
        found = await uow.secret_variables.find(project_id, name)
    assert found is not None
    return found


@pytest.mark.parametrize("owner", ["project", "instance"])
async def test_a_name_is_taken_once_per_owner(storage: Storage, owner: str) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    other, _ = await seed_pipeline(storage.uow_factory, name="other")
    project_id = project.id if owner == "project" else None
    await add(storage, new_secret(project_id))
    with pytest.raises(Conflict):
        await add(storage, new_secret(project_id))
    # the same name elsewhere is another variable
    await add(storage, new_secret(other.id), new_secret(project.id if project_id is None else None))


async def test_of_two_adds_racing_for_a_name_the_second_conflicts(storage: Storage) -> None:
    async with storage.uow_factory() as late:
        assert await late.secret_variables.find(None, "DEPLOY_KEY") is None
        await add(storage, new_secret(None))  # commits meanwhile
        with pytest.raises(Conflict):
            await late.secret_variables.add(new_secret(None))


async def test_a_set_that_loses_the_race_runs_again_and_replaces(
    storage: Storage, tmp_path: Path
) -> None:
    """The bus runs the use case again on ``StaleState``: the second set replaces the first."""
    project, _ = await seed_pipeline(storage.uow_factory)
    first = new_secret(project.id, value="first-value")
    units: list[Racing] = []

    def factory() -> Racing:
        units.append(Racing(storage, first if not units else None))
        return units[-1]

    deps = Dependencies(clock=SystemClock(), sources=GitSourceRepository(tmp_path), secret_box=BOX)
    secret, created = await MessageBus(factory, deps).handle(
        c.SetSecretVariable(project_id=project.id, name="DEPLOY_KEY", value="second-value")
    )
    assert (len(units), created, secret.id) == (2, False, first.id)
    assert open_value(await _find(storage, project.id, "DEPLOY_KEY"), BOX) == "second-value"


class Racing:
    """A unit of work whose first ``find`` is followed by another set of ``then_add``."""

    def __init__(self, storage: Storage, then_add: SecretVariable | None) -> None:
        self._storage = storage
        self._inner = storage.uow_factory()
        self._then_add = then_add

    async def __aenter__(self) -> Any:
        uow = await self._inner.__aenter__()
        if self._then_add is not None:
            original = uow.secret_variables.find

            async def find(project_id: str | None, name: str) -> SecretVariable | None:
                found = await original(project_id, name)
                assert self._then_add is not None
                await add(self._storage, self._then_add)
                return found

            uow.secret_variables.find = find  # type: ignore[method-assign]
        return uow

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_row_holds_the_sealed_text_only(storage: Storage) -> None:
    assert storage.engine is not None
    project, _ = await seed_pipeline(storage.uow_factory)
    await add(storage, new_secret(project.id))
    async with storage.engine.connect() as conn:
        [row] = (await conn.execute(select(secret_variables))).all()
    assert VALUE not in repr(tuple(row))
    assert row.sealed.startswith(f"v1:{BOX.keys.current_id}:")


async def test_the_listing_never_shows_a_value(storage: Storage) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    secret = new_secret(project.id, protected=True, created_by="alice")
    await add(storage, secret, new_secret(None, name="REGISTRY"))
    [view] = await storage.queries.list_secret_variables(project.id)
    assert not hasattr(view, "sealed")
    expected = {k: v for k, v in dataclasses.asdict(secret).items() if k != "sealed"}
    assert dataclasses.asdict(view) == expected
    assert [v.name for v in await storage.queries.list_secret_variables(None)] == ["REGISTRY"]
    assert await storage.queries.list_secret_variables("no-such-project") == []


async def test_a_build_keeps_whether_its_ref_was_protected(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    protected = dataclasses.replace(new_build(pipeline, 1), protected_ref=True)
    plain = new_build(pipeline, 2)
    async with storage.uow_factory() as uow:
        await uow.builds.add(protected)
        await uow.builds.add(plain)
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert (await uow.builds.get(protected.id)).protected_ref is True
        assert (await uow.builds.get(plain.id)).protected_ref is False
