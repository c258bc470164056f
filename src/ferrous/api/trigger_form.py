"""The body of a pipeline trigger in each form GitLab accepts, so existing scripts work.

``curl -F token=... -F ref=main -F "variables[KEY]=value"`` sends multipart form data,
``curl --data "token=...&ref=main&variables[KEY]=value"`` a URL-encoded form, other clients
JSON (``{"token", "ref", "variables": {}}``), and some scripts put ``token`` and ``ref`` in
the query string. All are read here into one ``PipelineTrigger``. Multipart is parsed with
the standard library's MIME parser: its fields are short text, no files.
"""

from __future__ import annotations

import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ferrous.api.bodies import read_body
from ferrous.api.schemas.trigger_tokens import PipelineTrigger

MAX_BYTES = 1024 * 1024
VARIABLE = "variables["


def _form_fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``variables[KEY]=value`` pairs into a ``variables`` mapping; the rest as they are."""
    fields: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith(VARIABLE) and name.endswith("]"):
            variables[name[len(VARIABLE) : -1]] = value
        else:
            fields[name] = value
    if variables:
        fields["variables"] = variables
    return fields


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    pairs = []
    for part in message.walk():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and not part.is_multipart():
            payload = part.get_payload(decode=True)
            text = payload.decode() if isinstance(payload, bytes) else ""
            pairs.append((name, text))
    return pairs


def _invalid(loc: tuple[str, ...], message: str, kind: str = "value_error") -> Exception:
    return RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": kind}])


async def read_trigger(request: Request) -> PipelineTrigger:
    """The trigger's parameters from the body (JSON or either form) and the query string;
    the body wins where both give one. Invalid ones raise ``RequestValidationError`` (422)."""
    body = await read_body(request, MAX_BYTES, "a pipeline trigger")
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    fields: dict[str, Any] = _form_fields(list(request.query_params.multi_items()))
    try:
        if media_type == "multipart/form-data":
            fields |= _form_fields(_multipart(content_type, body))
        elif media_type == "application/x-www-form-urlencoded":
            fields |= _form_fields(parse_qsl(body.decode(), keep_blank_values=True))
        elif body.strip():
            parsed = json.loads(body)
            if not isinstance(parsed, dict):
                raise _invalid((), "expected a JSON object")
            fields |= parsed
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid((), f"unreadable body: {exc}", "json_invalid") from exc
    try:
        return PipelineTrigger.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc
