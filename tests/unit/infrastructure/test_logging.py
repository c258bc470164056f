"""Log output: one JSON object per line (ours and the libraries'), console lines on request,
levels by setting; and the ids the bus binds while it handles a command or an event.

``configure_logging`` changes the process' logging for good (structlog caches configured
loggers), so the output tests run it in a child process and read what it writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import structlog
from structlog.testing import capture_logs

from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus, log_ids
from ferrous.domain.events import Event, JobCompleted
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, memory_uow_factory
from tests.unit.application.conftest import FakeClock

PROGRAM = """
import logging, sys
import structlog
from ferrous.infrastructure.logging import configure_logging

configure_logging(sys.argv[1], sys.argv[2])
log = structlog.get_logger("ferrous.example")
structlog.contextvars.bind_contextvars(request_id="r-1")
log.info("job_completed", job_id="j-1", status="success")
log.debug("debug_detail")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("job_crashed")
logging.getLogger("uvicorn.error").warning("Invalid %s request", "HTTP")
logging.getLogger("httpx").info("HTTP Request: POST ...")
try:
    raise ValueError("multi\\nline")
except ValueError:
    logging.getLogger("alembic").exception("migration failed")
"""


def run(level: str, fmt: str) -> str:
    """What the program writes on stderr (a pipe: not a terminal)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM), level, fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == ""
    return done.stderr


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines_carry_the_context_the_level_and_the_logger() -> None:
    ours, crashed, uvicorn, alembic = json_lines(run("info", "json"))
    assert ours["event"] == "job_completed"
    assert (ours["level"], ours["logger"], ours["request_id"]) == ("info", "ferrous.example", "r-1")
    assert (ours["job_id"], ours["status"]) == ("j-1", "success")
    assert ours["timestamp"].endswith("Z")
    assert crashed["level"] == "error"
    assert "ZeroDivisionError" in crashed["exception"]
    # the libraries' records go through the same chain: one JSON object per line too
    assert uvicorn == {
        "event": "Invalid HTTP request",
        "level": "warning",
        "logger": "uvicorn.error",
        "request_id": "r-1",
        "timestamp": uvicorn["timestamp"],
    }
    assert alembic["logger"] == "alembic"
    assert "ValueError: multi\\nline" in json.dumps(alembic["exception"])


def test_json_when_the_output_is_not_a_terminal() -> None:
    assert [line["event"] for line in json_lines(run("info", "auto"))] == [
        "job_completed",
        "job_crashed",
        "Invalid HTTP request",
        "migration failed",
    ]


def test_debug_shows_our_details_but_not_the_libraries_chatter() -> None:
    events = [line["event"] for line in json_lines(run("debug", "json"))]
    assert "debug_detail" in events
    assert "HTTP Request: POST ..." not in events  # httpx at INFO: libraries stay at WARNING


def test_warning_level_hides_info() -> None:
    events = [line["event"] for line in json_lines(run("warning", "json"))]
    assert events == ["job_crashed", "Invalid HTTP request", "migration failed"]


def test_console_lines_for_people() -> None:
    text = run("info", "console")
    first = text.splitlines()[0]
    assert not first.startswith("{")
    assert "job_completed" in first
    assert "[ferrous.example]" in first
    assert "request_id=r-1" in first
    assert "\x1b[" not in text  # no colours: stderr is not a terminal here
    assert "Traceback (most recent call last)" in text


def test_the_ids_of_a_command_or_an_event() -> None:
    event = JobCompleted(
        build_id="b-1",
        job_id="j-1",
        name="test",
        status="success",
        attempt=1,
        exit_code=0,
        failure_reason=None,
    )
    assert log_ids(event) == {"build_id": "b-1", "job_id": "j-1"}
    assert log_ids(object()) == {}


async def test_event_handlers_log_with_the_events_ids(tmp_path: Path) -> None:
    sources = GitSourceRepository(tmp_path / "trees", tmp_path / "mirrors")
    bus = MessageBus(
        memory_uow_factory(InMemoryStore()), Dependencies(clock=FakeClock(), sources=sources)
    )
    log = structlog.get_logger("ferrous.tests")

    async def handler(event: Event) -> None:
        log.info("job_completed")

    bus.subscribe(JobCompleted, handler)
    event = JobCompleted(
        build_id="b-1",
        job_id="j-1",
        name="test",
        status="failed",
        attempt=2,
        exit_code=1,
        failure_reason="script_failure",
    )
    structlog.contextvars.bind_contextvars(agent_id="a-1")  # as the agent's request would
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await bus.dispatch(event)
        assert structlog.contextvars.get_contextvars() == {"agent_id": "a-1"}
    finally:
        structlog.contextvars.clear_contextvars()
    [line] = logs
    assert (line["build_id"], line["job_id"], line["agent_id"]) == ("b-1", "j-1", "a-1")
