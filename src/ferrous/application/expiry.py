"""How long an artifact is kept: GitLab's ``expire_in`` durations ("1 week", "never").

The job's own ``artifacts:expire_in`` wins, then its project's default, then the server's
setting. The pipeline's lint already reported a bad job value to whoever wrote it, so here a
value that does not parse falls back to the next one with a log line: an upload is never
refused because of its expiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from ferrous.domain.errors import InvalidValue
from ferrous.pipeline_config.checks import parse_duration

log = structlog.get_logger(__name__)

NEVER = "never"
#: what is kept when no choice parses (GitLab's own default)
FALLBACK = timedelta(days=30)


def parse_expire_in(text: str) -> timedelta | None:
    """``"3 days 4 hrs"`` -> a timedelta; ``"never"`` -> None; anything else InvalidValue.

    The forms are GitLab's: a number of seconds, or numbers with units (s, min(s), h, hr(s),
    day(s), week(s), month(s) of 30 days, yr/year(s) of 365 days), optionally joined by
    commas or "and".
    """
    if text.strip().lower() == NEVER:
        return None
    seconds = parse_duration(text)
    if seconds is None:
        raise InvalidValue(
            f"expire_in {text!r} is not a duration such as '30 days', '1 week', '3 hrs' or 'never'"
        )
    return timedelta(seconds=seconds)


def check_expire_in(text: str) -> str:
    """``text`` if it parses (a project setting is refused with a message, not logged)."""
    parse_expire_in(text)
    return text.strip()


def expires_at(now: datetime, *choices: str | None, job_id: str = "") -> datetime | None:
    """When an artifact stored ``now`` expires: the first of ``choices`` that is set and
    parses wins (job spec, project, server setting); None: never. When none does, 30 days."""
    for choice in choices:
        if choice is None or not choice.strip():
            continue
        try:
            kept = parse_expire_in(choice)
        except InvalidValue:
            log.warning("artifact_expire_in_invalid", job_id=job_id, expire_in=choice)
            continue
        return None if kept is None else now + kept
    return now + FALLBACK
