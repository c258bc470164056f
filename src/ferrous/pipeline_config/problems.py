"""Config problems as data.

Every stage of compiling a pipeline reports into one collector instead of raising, so a person
sees every problem of a broken file at once, each pointing at a file, line and column, with a
dotted path (``jobs.test.needs[0]``) that a UI can highlight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Severity = Literal["error", "warning"]


class Position(NamedTuple):
    """A place in a source file; line and column count from 1, as editors show them.

    A named tuple rather than a dataclass: the loader makes one for every key and value, and
    tuple construction is several times cheaper.
    """

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


UNKNOWN_POSITION = Position(file="", line=0, column=0)

# Problem codes for kinds that other stages react to.
UNRESOLVED_INCLUDE = "unresolved-include"
MISSING_TEMPLATE = "missing-template"
MISSING_REFERENCE = "missing-reference"
MISSING_SCRIPT = "missing-script"
UNKNOWN_NEED = "unknown-need"
UNKNOWN_STAGE = "unknown-stage"
#: What a file can lack only because an include that was not resolved would have provided it.
MAYBE_FROM_INCLUDES = frozenset(
    {MISSING_TEMPLATE, MISSING_REFERENCE, MISSING_SCRIPT, UNKNOWN_NEED, UNKNOWN_STAGE}
)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    severity: Severity
    message: str
    file: str
    line: int
    column: int
    path: str
    #: A stable name for the kind of problem, for code that treats some kinds specially.
    code: str = ""

    def to_json(self) -> dict[str, str | int]:
        return {
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "code": self.code,
        }


@dataclass(slots=True)
class Problems:
    """Collects problems from every compile stage; duplicates are dropped.

    The same broken template can reach many jobs through ``extends``; reporting it once per
    place keeps the list readable.
    """

    items: list[ConfigProblem] = field(default_factory=list)
    _seen: set[ConfigProblem] = field(default_factory=set)

    def add(
        self, severity: Severity, path: str, message: str, pos: Position | None, code: str = ""
    ) -> None:
        where = pos or UNKNOWN_POSITION
        problem = ConfigProblem(
            severity=severity,
            message=message,
            file=where.file,
            line=where.line,
            column=where.column,
            path=path,
            code=code,
        )
        if problem not in self._seen:
            self._seen.add(problem)
            self.items.append(problem)

    def error(self, path: str, message: str, pos: Position | None, code: str = "") -> None:
        self.add("error", path, message, pos, code)

    def warning(self, path: str, message: str, pos: Position | None, code: str = "") -> None:
        self.add("warning", path, message, pos, code)

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.items)

    def sorted(self) -> list[ConfigProblem]:
        return sorted(self.items, key=lambda p: (p.file, p.line, p.column, p.path, p.message))
