"""Finishing touches on the generated OpenAPI document.

Errors are documented as they are sent (``application/problem+json``, validation errors as
``ValidationProblem``, not FastAPI's default shape), and each operation names its permission.
The answers any route may give are documented on every operation that can give them, so a
client (or a schema-driven test) meets no undocumented status: 401/403 where a token is
needed, 400 where a body is read (bytes that are not text), 429 everywhere (rate limits).
A 422 is a ``ValidationProblem`` when the request's shape is wrong, or a plain problem when
its values are refused further in (``InvalidValue``, ``ConfigInvalid``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from ferrous.api.errors import PROBLEM_JSON
from ferrous.api.permissions import document_permissions
from ferrous.api.schemas.common import ProblemDetail, ValidationProblem

_REF = "#/components/schemas/"


def common_errors(operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation may answer whatever its route says."""
    statuses = [429]
    permission = operation.get("x-permission")
    if permission == "agent:protocol":  # an agent's token: valid or not, no roles
        statuses.append(401)
    elif permission not in (None, "public"):
        statuses += [401, 403]
    if "requestBody" in operation:
        statuses.append(400)
    return statuses


def finish_openapi(app: FastAPI, schema: dict[str, Any]) -> None:
    document_permissions(app, schema)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ProblemDetail, ValidationProblem):
        if model.__name__ not in components:
            components.update(
                model.model_json_schema(ref_template=_REF + "{model}").pop("$defs", {})
            )
            components[model.__name__] = model.model_json_schema(ref_template=_REF + "{model}")
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code in common_errors(operation):
                responses.setdefault(str(code), {"description": HTTPStatus(code).phrase})
            for status, response in responses.items():
                if status == "422":
                    refs = [{"$ref": _REF + "ValidationProblem"}, {"$ref": _REF + "ProblemDetail"}]
                    response["content"] = {PROBLEM_JSON: {"schema": {"anyOf": refs}}}
                elif status[:1] in {"4", "5"}:
                    response["content"] = {
                        PROBLEM_JSON: {"schema": {"$ref": _REF + "ProblemDetail"}}
                    }
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
