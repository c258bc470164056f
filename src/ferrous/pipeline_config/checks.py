"""Typed readers for config values that report a problem instead of raising.

Each reader takes the raw value, its dotted path and its position, and returns the typed value
or ``None`` after recording an error, so validation of one job can go on to the next key and a
person sees every problem at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.yaml_source import YMap, position_of, where

_DURATION_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "week": 604800,
    "weeks": 604800,
    "mo": 2592000,
    "month": 2592000,
    "months": 2592000,
    "y": 31536000,
    "yr": 31536000,
    "year": 31536000,
    "years": 31536000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


#: The longest duration taken: a moment that far ahead is still a date (year 9999 is the last).
MAX_DURATION = 1000 * 31536000


def parse_duration(text: str) -> int | None:
    """Seconds in a human duration such as ``1h 30m``, ``3 hours``, ``90`` (GitLab's forms);
    None for anything else, and for more than MAX_DURATION (1,000 years), which would take a
    token's or an artifact's expiry past the last date there is."""
    cleaned = text.strip().lower().replace(",", " ").replace(" and ", " ")
    if not cleaned:
        return None
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(cleaned):
        if cleaned[pos : match.start()].strip():
            return None
        unit = match.group(2) or "s"
        if unit not in _DURATION_UNITS:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[unit]
        pos = match.end()
    if cleaned[pos:].strip() or pos == 0 or not total <= MAX_DURATION:
        return None
    return int(total)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class Checker:
    """Reads typed values from loaded YAML, reporting every mismatch into ``problems``."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def error(self, path: str, message: str, pos: Position, code: str = "") -> None:
        self.problems.error(path, message, pos, code)

    def warning(self, path: str, message: str, pos: Position) -> None:
        self.problems.warning(path, message, pos)

    def unknown_keys(self, mapping: YMap, allowed: Iterable[str], path: str, what: str) -> None:
        allowed_set = set(allowed)
        for key in mapping:
            if key not in allowed_set:
                self.error(
                    f"{path}.{key}",
                    f"unknown key {key!r} in {what}{did_you_mean(key, allowed_set)}; "
                    "expected one of: " + ", ".join(sorted(allowed_set)),
                    mapping.where_key(key),
                )

    def mapping(self, value: Any, path: str, pos: Position) -> YMap | None:
        if isinstance(value, YMap):
            return value
        if isinstance(value, dict):
            return YMap(value, pos=pos)
        self.error(path, f"{path} should be a mapping, not {type_name(value)}", pos)
        return None

    def string(self, value: Any, path: str, pos: Position, *, numbers: bool = False) -> str | None:
        if isinstance(value, str):
            return value
        if numbers and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.error(path, f"{path} should be a string, not {type_name(value)}", pos)
        return None

    def boolean(self, value: Any, path: str, pos: Position) -> bool | None:
        if isinstance(value, bool):
            return value
        self.error(path, f"{path} should be true or false, not {type_name(value)}", pos)
        return None

    def integer(
        self,
        value: Any,
        path: str,
        pos: Position,
        *,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(path, f"{path} should be a whole number, not {type_name(value)}", pos)
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.error(path, f"{path} should be {bounds}, not {value}", pos)
            return None
        return value

    def choice(self, value: Any, path: str, pos: Position, choices: Iterable[str]) -> str | None:
        options = sorted(choices)
        if isinstance(value, str) and value in options:
            return value
        self.error(path, f"{path} should be one of {', '.join(options)}, not {value!r}", pos)
        return None

    def strings(
        self, value: Any, path: str, pos: Position, *, scalar_ok: bool = True, numbers: bool = True
    ) -> tuple[str, ...] | None:
        """A list of strings; a lone string counts as a list of one where GitLab allows it."""
        if value is None:
            return ()
        if scalar_ok and (
            isinstance(value, str)
            or (numbers and isinstance(value, int | float) and not isinstance(value, bool))
        ):
            return (str(value),)
        if not isinstance(value, list):
            self.error(path, f"{path} should be a list of strings, not {type_name(value)}", pos)
            return None
        out: list[str] = []
        ok = True
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            text = self.string(item, item_path, where(value, index), numbers=numbers)
            if text is None:
                ok = False
            else:
                out.append(text)
        return tuple(out) if ok else None

    def script(self, value: Any, path: str, pos: Position) -> tuple[str, ...] | None:
        """A script: a string, or a list of strings nested at most 10 deep (flattened)."""
        if isinstance(value, str):
            if not value:
                self.error(path, f"{path} should not be empty", pos)
                return None
            return (value,)
        if not isinstance(value, list):
            self.error(
                path,
                f"{path} should be a string or a nested list of strings up to 10 levels deep, "
                f"not {type_name(value)}",
                pos,
            )
            return None
        lines: list[str] = []
        if not self._flatten_script(value, path, 1, lines):
            return None
        return tuple(lines)

    def _flatten_script(self, items: list[Any], path: str, depth: int, out: list[str]) -> bool:
        if depth > 10:
            self.error(
                path,
                f"{path} should be a string or a nested list of strings up to 10 levels deep",
                position_of(items),
            )
            return False
        ok = True
        for index, item in enumerate(items):
            if isinstance(item, list):
                ok = self._flatten_script(item, f"{path}[{index}]", depth + 1, out) and ok
            elif isinstance(item, str | int | float) and not isinstance(item, bool):
                out.append(str(item))
            elif item is None:
                continue
            else:
                self.error(
                    f"{path}[{index}]",
                    f"{path}[{index}] should be a command (a string), not {type_name(item)}; "
                    "a line with ': ' in it needs quotes",
                    where(items, index),
                )
                ok = False
        return ok

    def duration(
        self, value: Any, path: str, pos: Position, *, maximum: int | None = None
    ) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            seconds: int | None = value
        elif isinstance(value, str):
            seconds = parse_duration(value)
        else:
            seconds = None
        if seconds is None:
            self.error(path, f"{path} should be a duration such as '1h 30m', not {value!r}", pos)
            return None
        if maximum is not None and seconds > maximum:
            self.error(path, f"{path} should be at most {maximum} seconds, not {value!r}", pos)
            return None
        return seconds
