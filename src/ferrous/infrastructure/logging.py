"""Structured logs: JSON for machines, readable lines on a terminal, ids bound per context.

Stable snake_case event names (``job_completed``) with fields; request, build, job and agent
ids are bound through contextvars so every line of a request carries them.

Every line, ours and the libraries' (uvicorn, alembic, ...), goes through one stdlib handler
with structlog's ``ProcessorFormatter``: in JSON mode each record is one JSON object on one
line (a traceback is a field of it), with ``timestamp``, ``level``, ``logger`` and
``event``. JSON when asked (``log_format=json``) or when the output is not a terminal
(``auto``); coloured console lines on a terminal. Our own loggers (``ferrous.*``) log at the
configured level, the libraries' at WARNING or above (they are chatty at INFO: httpx logs
every request).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import TextIO

import structlog

#: marks the handler ``configure_logging`` installed, so that calling it again replaces it
_HANDLER_NAME = "ferrous"


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib's root logger to write to ``stream`` (stderr)."""
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    terminal = out.isatty()
    use_json = fmt == "json" or (fmt == "auto" and not terminal)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[structlog.typing.Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta
    ]
    if use_json:  # the console renderer formats exceptions itself, with colours
        rendering += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        rendering.append(
            structlog.dev.ConsoleRenderer(
                colors=terminal, exception_formatter=_tracebacks(terminal)
            )
        )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=rendering)
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
    logging.getLogger("ferrous").setLevel(numeric)


def _tracebacks(terminal: bool) -> structlog.typing.ExceptionRenderer:
    """Rich tracebacks on a terminal (when rich is installed), never with the frames' local
    variables: they may hold tokens and secrets."""
    if terminal and importlib.util.find_spec("rich") is not None:
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback
