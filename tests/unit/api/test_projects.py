"""Projects and pipelines: happy paths, shapes, and the errors people meet."""

from __future__ import annotations

import httpx

from ferrous.application.commands import (
    CreatePipeline,
    CreateProject,
    DisablePipeline,
    UpdateProject,
)
from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials
from tests.unit.api.conftest import assert_problem, create_project
from tests.unit.api.fakes import FakeWorld


async def test_create_project_answers_201_with_its_default_pipeline(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    response = await client.post(
        "/api/v1/projects",
        json={"name": "ferrous", "repo_url": "/srv/git/ferrous.git", "default_branch": "trunk"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "name": "ferrous",
        "repo_url": "/srv/git/ferrous.git",
        "default_branch": "trunk",
        "created_at": "2025-01-31T12:00:00Z",
        "credentials": {"kind": "none", "set": False},
        "webhook_secret_set": False,
        "forge": "none",
        "forge_api_url": None,
        "forge_repo": None,
        "forge_token_set": False,
        "artifacts_expire_in": None,
        "keep_latest_artifacts": True,
        "default_pipeline_id": body["default_pipeline_id"],
    }
    assert world.queries.pipelines[body["default_pipeline_id"]].name == "default"
    assert response.headers["location"] == f"/api/v1/projects/{body['id']}"
    assert world.commands == [
        CreateProject(name="ferrous", repo_url="/srv/git/ferrous.git", default_branch="trunk")
    ]


async def test_a_second_project_of_the_same_name_is_a_conflict(client: httpx.AsyncClient) -> None:
    await create_project(client)

    response = await client.post("/api/v1/projects", json={"name": "ferrous", "repo_url": "x"})

    body = assert_problem(response, 409)
    assert body["type"] == "urn:ferrous:problem:conflict"
    assert "exists already" in body["detail"]
    assert body["instance"] == "/api/v1/projects"


async def test_invalid_project_fields_are_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/projects", json={"name": "-bad name"})

    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"body.name", "body.repo_url"}
    assert all(error["message"] for error in body["errors"])


async def test_a_body_that_is_not_json_is_named_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/projects", content=b"{nope", headers={"content-type": "application/json"}
    )

    body = assert_problem(response, 422)
    assert [error["field"] for error in body["errors"]] == ["body"]


async def test_list_and_get_projects_by_id_or_name(client: httpx.AsyncClient) -> None:
    created = await create_project(client)
    await create_project(client, "other")

    listing = (await client.get("/api/v1/projects")).json()
    by_id = (await client.get(f"/api/v1/projects/{created['id']}")).json()
    by_name = (await client.get("/api/v1/projects/ferrous")).json()

    assert [p["name"] for p in listing["items"]] == ["ferrous", "other"]
    assert set(listing["items"][0]) == {
        "id",
        "name",
        "repo_url",
        "default_branch",
        "created_at",
        "credentials",
        "webhook_secret_set",
        "forge",
        "forge_api_url",
        "forge_repo",
        "forge_token_set",
        "artifacts_expire_in",
        "keep_latest_artifacts",
    }
    assert by_id == by_name == created


async def test_an_unknown_project_is_404(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/projects/nope"), 404)
    assert body["type"] == "urn:ferrous:problem:not-found"
    assert body["detail"] == "no project 'nope'"
    assert_problem(await client.get("/api/v1/projects/nope/pipelines"), 404)


async def test_pipelines_of_a_project(client: httpx.AsyncClient, world: FakeWorld) -> None:
    project = await create_project(client)

    created = await client.post(
        "/api/v1/projects/ferrous/pipelines",
        json={"name": "nightly", "config_path": ".gitlab-ci.yml"},
    )
    listing = await client.get(f"/api/v1/projects/{project['id']}/pipelines")

    assert created.status_code == 201
    pipeline = created.json()
    assert pipeline == {
        "id": pipeline["id"],
        "project_id": project["id"],
        "name": "nightly",
        "config_path": ".gitlab-ci.yml",
        "enabled": True,
        "created_at": "2025-01-31T12:00:01Z",
    }
    assert created.headers["location"] == f"/api/v1/pipelines/{pipeline['id']}"
    assert [p["name"] for p in listing.json()["items"]] == ["default", "nightly"]
    assert (await client.get(f"/api/v1/pipelines/{pipeline['id']}")).json() == pipeline
    assert world.commands[-1] == CreatePipeline(
        project_id=project["id"], name="nightly", config_path=".gitlab-ci.yml"
    )


async def test_pipeline_conflicts_and_validation(client: httpx.AsyncClient) -> None:
    await create_project(client)

    duplicate = await client.post("/api/v1/projects/ferrous/pipelines", json={"name": "default"})
    invalid = await client.post("/api/v1/projects/ferrous/pipelines", json={"name": ""})

    assert_problem(duplicate, 409)
    assert [e["field"] for e in assert_problem(invalid, 422)["errors"]] == ["body.name"]
    assert_problem(await client.get("/api/v1/pipelines/nope"), 404)
    assert_problem(await client.post("/api/v1/pipelines/nope/enable"), 404)


async def test_disable_and_enable_a_pipeline(client: httpx.AsyncClient, world: FakeWorld) -> None:
    pipeline_id = (await create_project(client))["default_pipeline_id"]

    disabled = await client.post(f"/api/v1/pipelines/{pipeline_id}/disable")
    refused = await client.post(f"/api/v1/pipelines/{pipeline_id}/builds", json={})
    enabled = await client.post(f"/api/v1/pipelines/{pipeline_id}/enable")

    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert DisablePipeline(pipeline_id=pipeline_id) in world.commands
    assert "disabled" in assert_problem(refused, 409)["detail"]
    assert enabled.json()["enabled"] is True


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n"


async def test_credentials_are_write_only(client: httpx.AsyncClient, world: FakeWorld) -> None:
    response = await client.post(
        "/api/v1/projects",
        json={
            "name": "private",
            "repo_url": "https://git.example.com/ci/private.git",
            "credentials": {"kind": "https_token", "token": "glpat-s3cr3t"},
        },
    )
    listing = await client.get("/api/v1/projects")

    assert response.status_code == 201, response.text
    assert response.json()["credentials"] == {"kind": "https_token", "set": True}
    assert "s3cr3t" not in response.text + listing.text
    command = world.commands[0]
    assert isinstance(command, CreateProject)
    assert command.credentials == RepoCredentials(
        kind=CredentialKind.HTTPS_TOKEN, token="glpat-s3cr3t"
    )
    assert "s3cr3t" not in repr(command)


async def test_update_a_project_s_url_and_credentials(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    project = await create_project(client)

    updated = await client.patch(
        "/api/v1/projects/ferrous",
        json={
            "repo_url": "ssh://git@git.example.com/ci/ferrous.git",
            "credentials": {"kind": "ssh_key", "private_key": KEY},
        },
    )
    cleared = await client.patch("/api/v1/projects/ferrous", json={"credentials": {"kind": "none"}})

    assert updated.status_code == 200, updated.text
    assert updated.json()["repo_url"] == "ssh://git@git.example.com/ci/ferrous.git"
    assert updated.json()["credentials"] == {"kind": "ssh_key", "set": True}
    assert "OPENSSH" not in updated.text
    assert cleared.json()["credentials"] == {"kind": "none", "set": False}
    assert world.commands[-1] == UpdateProject(
        project_id=project["id"], credentials=RepoCredentials()
    )


async def test_unusable_credentials_are_refused(client: httpx.AsyncClient) -> None:
    await create_project(client)

    not_a_key = await client.patch(
        "/api/v1/projects/ferrous",
        json={"credentials": {"kind": "ssh_key", "private_key": "hunter2"}},
    )
    unknown_kind = await client.patch(
        "/api/v1/projects/ferrous", json={"credentials": {"kind": "password", "token": "x"}}
    )

    assert "private key" in assert_problem(not_a_key, 422)["detail"]
    assert "hunter2" not in not_a_key.text
    assert assert_problem(unknown_kind, 422)["errors"][0]["field"] == "body.credentials"
    assert_problem(await client.patch("/api/v1/projects/nope", json={}), 404)
