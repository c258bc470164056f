"""The OpenAPI document names every status an operation may answer, in the shape it is sent.

A client (and the schema-driven e2e test) must meet no undocumented status: the token
errors where a token is needed, 400 where a body is read, 429 on every operation, and a 422
that is either a ``ValidationProblem`` or a plain problem.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PROBLEM = {"$ref": "#/components/schemas/ProblemDetail"}
VALIDATION = {"$ref": "#/components/schemas/ValidationProblem"}


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/api/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def test_token_errors_follow_the_permission(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        statuses = set(operation["responses"])
        permission = operation["x-permission"]
        if permission == "public":
            assert "403" not in statuses, name
        elif permission == "agent:protocol":
            assert "401" in statuses, name
        else:
            assert {"401", "403"} <= statuses, name
        assert "429" in statuses, name  # the rate limits stand before every route


def test_a_body_that_is_not_text_is_documented(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        assert ("400" in operation["responses"]) == (
            "requestBody" in operation or name.startswith("POST /api/v1/hooks/")
        ), name


def test_a_422_is_a_validation_problem_or_a_plain_one(spec: dict[str, Any]) -> None:
    answers = [op["responses"]["422"] for _, op in operations(spec) if "422" in op["responses"]]

    assert answers
    for answer in answers:
        schema = answer["content"]["application/problem+json"]["schema"]
        assert schema == {"anyOf": [VALIDATION, PROBLEM]}


def test_other_errors_are_plain_problems(spec: dict[str, Any]) -> None:
    builds = spec["paths"]["/api/v1/builds/{build_id}"]["get"]["responses"]

    for status in ("401", "403", "404", "429"):
        assert builds[status]["content"]["application/problem+json"]["schema"] == PROBLEM
