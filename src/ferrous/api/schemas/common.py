"""Shared pieces of the API models: UTC timestamps and list envelopes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict


def as_utc(value: datetime) -> datetime:
    """Timestamps leave the API in UTC; a naive one from a store is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.utcoffset() == UTC.utcoffset(None) else value.astimezone(UTC)


#: Serialized as ISO 8601 in UTC: ``2025-01-31T12:00:00.123456Z``.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class ApiModel(BaseModel):
    """Responses are read from the query DTOs' attributes."""

    model_config = ConfigDict(from_attributes=True)


class ProblemDetail(BaseModel):
    """An error (RFC 9457 problem details), sent as ``application/problem+json``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:ferrous:problem:not-found",
                    "title": "The requested object does not exist.",
                    "status": 404,
                    "detail": "no build 0190c2a4-...",
                    "instance": "/api/v1/builds/0190c2a4-...",
                    "request_id": "5f2b8c1e9a7d4e3f8a6b1c0d2e4f6a8b",
                }
            ]
        },
    )

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None = None


class FieldError(BaseModel):
    field: str  # e.g. "body.ref" or "query.limit"
    message: str


class ValidationProblem(ProblemDetail):
    errors: list[FieldError]


def fields_of(model: type[BaseModel], source: Any, **computed: Any) -> dict[str, Any]:
    """``model``'s fields read from ``source``'s attributes, with ``computed`` ones (which
    ``source`` lacks, such as a token's status at this moment) given."""
    names = model.model_fields.keys() - computed.keys()
    return {**{name: getattr(source, name) for name in names}, **computed}


def problems(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` for the error statuses a route may answer (problem+json)."""
    return {
        status: {"model": ValidationProblem if status == 422 else ProblemDetail}
        for status in statuses
    }
