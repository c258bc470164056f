"""Finishing touches on the generated OpenAPI document.

Errors are documented as they are sent (``application/problem+json``, validation errors as
``ValidationProblem``, not FastAPI's default shape), and each operation names its permission.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ferrous.api.errors import PROBLEM_JSON
from ferrous.api.permissions import document_permissions
from ferrous.api.schemas.common import ProblemDetail, ValidationProblem

_REF = "#/components/schemas/"


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
            for status, response in operation.get("responses", {}).items():
                if status[:1] in {"4", "5"}:
                    name = "ValidationProblem" if status == "422" else "ProblemDetail"
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": _REF + name}}}
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
