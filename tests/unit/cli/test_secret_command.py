"""``ferrous project secret`` and ``ferrous secrets`` against a real API on memory, and the
key commands on a real data dir.

The value is read from standard input (never an argument); ``list`` never shows one;
``rotate-key`` then ``reseal`` move every stored secret to the new key, and the old key can
then go.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.application.commands import CreateProject, SetSecretVariable
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.secret_variables import secret_context
from ferrous.cli.main import app
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, KeyRing, load_keys
from ferrous.infrastructure.settings import Settings, load_settings
from ferrous.infrastructure.sql import SqlUnitOfWork, create_engine, migrate
from tests.unit.api.fakes import FakeWorld
from tests.unit.cli.conftest import api_in_thread

VALUE = "dk_live_7f3a9c2e5b1d4f8a0c6e2b9d7f1a3c5e"


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def server_url(
    tmp_path: Path, store: InMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(
            clock=SystemClock(),
            sources=GitSourceRepository(tmp_path / "trees"),
            secret_box=AesGcmSecretBox(KeyRing([secrets.token_bytes(32)])),
        ),
    )
    world = FakeWorld()
    monkeypatch.setenv("FERROUS_TOKEN", world.people.tokens["admin"])
    services = world.services(bus=bus, queries=InMemoryQueries(store))
    with api_in_thread(create_app(services)) as url:
        yield url


def ferrous(url: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--url", url], input=stdin)


def test_project_secret_set_list_delete(server_url: str, store: InMemoryStore) -> None:
    ferrous(server_url, "project", "add", "app", "/srv/git/app.git")
    saved = ferrous(
        server_url, "project", "secret", "set", "app", "DEPLOY_KEY", "--value-stdin",
        "--protected", stdin=VALUE + "\n",
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    assert saved.stdout == "secret DEPLOY_KEY of app saved (protected, masked)\n"
    [kept] = store.secret_variables.values()
    assert (kept.name, kept.protected, kept.masked) == ("DEPLOY_KEY", True, True)

    pem = "-----BEGIN KEY-----\nbody\n-----END KEY-----"
    multi = ferrous(
        server_url, "project", "secret", "set", "app", "PEM", "--value-stdin", "--no-mask",
        stdin=pem + "\n",
    )  # fmt: skip
    assert multi.exit_code == 0, multi.output
    refused = ferrous(
        server_url, "project", "secret", "set", "app", "PEM2", "--value-stdin", stdin=pem
    )
    assert refused.exit_code == 1
    assert "single line" in refused.stderr

    table = ferrous(server_url, "project", "secret", "list", "app")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split()[:3] == ["NAME", "PROTECTED", "MASKED"]
    assert VALUE not in table.stdout
    items = json.loads(ferrous(server_url, "project", "secret", "list", "app", "--json").stdout)
    assert [item["name"] for item in items] == ["DEPLOY_KEY", "PEM"]
    assert VALUE not in str(items)

    deleted = ferrous(server_url, "project", "secret", "delete", "app", "DEPLOY_KEY")
    assert deleted.stdout == "secret DEPLOY_KEY of app deleted\n"
    missing = ferrous(server_url, "project", "secret", "delete", "app", "DEPLOY_KEY")
    assert missing.exit_code == 1
    assert "HTTP 404" in missing.stderr


def test_a_value_must_come_from_stdin_when_there_is_no_terminal(server_url: str) -> None:
    ferrous(server_url, "project", "add", "app", "/srv/git/app.git")
    result = ferrous(server_url, "project", "secret", "set", "app", "DEPLOY_KEY", stdin="")
    assert result.exit_code == 1
    assert "--value-stdin" in result.stderr


def test_instance_secrets(server_url: str, store: InMemoryStore) -> None:
    saved = ferrous(
        server_url, "secrets", "set", "REGISTRY", "--value-stdin", "--no-mask", stdin=VALUE
    )
    assert saved.stdout == "secret REGISTRY of the instance saved\n"
    assert [s.project_id for s in store.secret_variables.values()] == [None]
    listed = ferrous(server_url, "secrets", "list", "--json")
    assert [item["name"] for item in json.loads(listed.stdout)] == ["REGISTRY"]
    assert ferrous(server_url, "secrets", "delete", "REGISTRY").exit_code == 0
    assert store.secret_variables == {}


def test_rotate_key_then_reseal_moves_every_secret_to_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FERROUS_SECRET_KEY", "FERROUS_DATABASE_URL", "FERROUS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    settings = load_settings(data_dir=data_dir)
    project_id = asyncio.run(_seed(settings))
    old = load_keys(None, data_dir).current_id

    rotated = CliRunner().invoke(app, ["secrets", "rotate-key", "--data-dir", str(data_dir)])
    assert rotated.exit_code == 0, rotated.output
    new = load_keys(None, data_dir).current_id
    assert new != old
    assert new in rotated.stdout
    assert asyncio.run(_sealed_with(settings, project_id)) == {old}  # still the old key

    resealed = CliRunner().invoke(app, ["secrets", "reseal", "--data-dir", str(data_dir)])
    assert resealed.exit_code == 0, resealed.output
    assert resealed.stdout == "3 secret value(s) sealed with the current key\n"
    assert asyncio.run(_sealed_with(settings, project_id)) == {new}

    key_file = data_dir / "secret.key"  # the operator removes the old key
    lines = key_file.read_text().splitlines()
    keys = [line for line in lines if line and not line.startswith("#")]
    key_file.write_text("\n".join([*(line for line in lines if line.startswith("#")), keys[0]]))
    assert asyncio.run(_opened(settings, project_id)) == (VALUE, "instance-value", "w" * 20)


async def _seed(settings: Settings) -> str:
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        bus = MessageBus(lambda: SqlUnitOfWork(engine), _deps(settings))
        project = await bus.handle(
            CreateProject(name="app", repo_url="/srv/git/app.git", webhook_secret="w" * 20)
        )
        for owner, value in ((project.id, VALUE), (None, "instance-value")):
            await bus.handle(SetSecretVariable(project_id=owner, name="TOKEN", value=value))
        return str(project.id)
    finally:
        await engine.dispose()


def _deps(settings: Settings) -> Dependencies:
    box = AesGcmSecretBox(load_keys(settings.secret_key, settings.data_dir))
    return Dependencies(clock=SystemClock(), sources=GitSourceRepository(Path()), secret_box=box)


async def _stored(settings: Settings, project_id: str) -> list[str]:
    engine = create_engine(settings.resolved_database_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            project = await uow.projects.get(project_id)
            own = await uow.secret_variables.list_for(project_id)
            instance = await uow.secret_variables.list_for(None)
    finally:
        await engine.dispose()
    assert project.webhook_secret is not None
    return [own[0].sealed, instance[0].sealed, project.webhook_secret]


async def _sealed_with(settings: Settings, project_id: str) -> set[str]:
    return {AesGcmSecretBox.key_id_of(s) for s in await _stored(settings, project_id)}


async def _opened(settings: Settings, project_id: str) -> tuple[str, ...]:
    box = _deps(settings).secret_box
    assert box is not None
    own, instance, webhook = await _stored(settings, project_id)
    return (
        box.decrypt(own, context=secret_context(project_id, "TOKEN")).decode(),
        box.decrypt(instance, context=secret_context(None, "TOKEN")).decode(),
        box.decrypt(webhook, context=f"project:{project_id}:webhook-secret".encode()).decode(),
    )
