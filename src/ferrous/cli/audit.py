"""``ferrous audit``: the server's audit log, newest first (admins).

``--since`` and ``--until`` take a moment (``2026-03-01T12:00:00Z``, a date) or a duration
back from now (``1h``, ``7d``, ``1h 30m``). A table for people, ``--json`` for scripts;
``--limit`` entries are fetched, following the server's pages.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, fail, print_json, print_table
from ferrous.cli.remote import JsonOption, UrlOption

COLUMNS = ["at", "actor", "action", "target", "result", "source_ip"]
PAGE = 200

MomentOption = Annotated[
    str | None, typer.Option(help="A moment (ISO 8601) or a duration ago: 1h, 7d, 1h 30m.")
]


def moment(text: str, option: str, now: datetime) -> str:
    """The ISO 8601 moment ``text`` names, in UTC."""
    from ferrous.pipeline_config.checks import parse_duration

    seconds = parse_duration(text)
    if seconds is not None:
        return (now - timedelta(seconds=seconds)).isoformat()
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise fail(f"{option}: {text!r} is neither a moment (ISO 8601) nor a duration") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def _row(item: dict[str, Any]) -> dict[str, Any]:
    actor = item["actor_name"] or item["actor_id"] or "anonymous"
    if item["actor_kind"] and item["actor_kind"] != "user":
        actor = f"{item['actor_kind']}:{actor}"
    target = " ".join(f"{key}={value}" for key, value in item["target"].items())
    return {**item, "actor": actor, "target": target or None}


def audit_command(
    actor: Annotated[str | None, typer.Option(help="Only this actor (id or name).")] = None,
    action: Annotated[
        str | None, typer.Option(help='Only actions starting so: "POST /api/v1/auth/login".')
    ] = None,
    since: MomentOption = None,
    until: MomentOption = None,
    result: Annotated[int | None, typer.Option(help="Only this HTTP status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    now = datetime.now(UTC)
    params: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "since": moment(since, "--since", now) if since else None,
        "until": moment(until, "--until", now) if until else None,
        "result": result,
    }
    params = {key: value for key, value in params.items() if value is not None}
    client = Client(url)
    items: list[dict[str, Any]] = []
    cursor = None
    while len(items) < limit:
        page_params = {**params, "limit": min(PAGE, limit - len(items))}
        if cursor:
            page_params["cursor"] = cursor
        page = client.get("/audit", params=page_params)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    if as_json:
        print_json(items)
    else:
        print_table([_row(item) for item in items], COLUMNS)
    if cursor:
        sys.stderr.write(f"(more entries: raise --limit above {limit})\n")
