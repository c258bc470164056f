"""Secret variables: values a job's shell gets as environment variables, sealed at rest.

As GitLab's CI/CD variables: a project's own, or instance-wide (``project_id`` None) for
every project, a project's overriding an instance one of the same name. The value is kept
sealed by the secret box (the application seals it, bound to its owner and name) and never
leaves the server except in the claim of a job that gets it.

- ``protected``: only jobs of a protected ref get it (the project's default branch and
  tags): a branch anyone may push to cannot print the production deploy key.
- ``masked``: the agent replaces the value by ``[MASKED]`` in the job's log. As in GitLab a
  masked value must be at least 8 characters and one line: a shorter one would mask every
  "true" in the log, and a log is cut into lines anywhere.

The checks here run on the plain value, before it is sealed; messages never quote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ferrous.domain.errors import InvalidValue
from ferrous.domain.ids import new_id

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME = 255
MAX_VALUE_BYTES = 64 * 1024
MIN_MASKED = 8


def check_name(name: str) -> str:
    """An environment variable's name, as a shell takes it."""
    if len(name) > MAX_NAME or not NAME_PATTERN.fullmatch(name):
        raise InvalidValue(
            f"a secret's name is 1 to {MAX_NAME} letters, digits or '_', not starting with a "
            f"digit ({name[:MAX_NAME]!r} is not)"
        )
    return name


def check_value(value: str, *, masked: bool) -> str:
    """The plain value, if a job can get it (and the agent mask it, when ``masked``)."""
    if not value:
        raise InvalidValue("a secret's value cannot be empty")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise InvalidValue(f"a secret's value is at most {MAX_VALUE_BYTES} bytes (UTF-8)")
    if "\0" in value:
        raise InvalidValue("a secret's value cannot hold a NUL character")
    if masked:
        if len(value) < MIN_MASKED:
            raise InvalidValue(
                f"a masked secret's value is at least {MIN_MASKED} characters; "
                "give a longer value or set masked to false"
            )
        if "\n" in value or "\r" in value:
            raise InvalidValue(
                "a masked secret's value is a single line; set masked to false for a "
                "multi-line value (its lines are then not masked in logs)"
            )
    return value


@dataclass(slots=True, kw_only=True)
class SecretVariable:
    id: str
    project_id: str | None  # None: every project's (an instance variable)
    name: str
    sealed: str  # from ``SecretBox.encrypt``, bound to the owner and the name
    protected: bool
    masked: bool
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None  # who set it first (a user's name), when known

    @classmethod
    def create(
        cls,
        *,
        project_id: str | None,
        name: str,
        sealed: str,
        protected: bool,
        masked: bool,
        now: datetime,
        created_by: str | None = None,
    ) -> SecretVariable:
        return cls(
            id=new_id(),
            project_id=project_id,
            name=check_name(name),
            sealed=sealed,
            protected=protected,
            masked=masked,
            created_at=now,
            updated_at=now,
            created_by=created_by,
        )

    def replace(self, *, sealed: str, protected: bool, masked: bool, now: datetime) -> None:
        """A new value and flags; the variable keeps its id and creation."""
        self.sealed = sealed
        self.protected = protected
        self.masked = masked
        self.updated_at = now

    def __repr__(self) -> str:  # the sealed value stays out of logs and tracebacks
        scope = self.project_id or "instance"
        return f"SecretVariable(id={self.id!r}, scope={scope!r}, name={self.name!r})"


def is_protected_ref(*, branch: str | None, tag: str | None, default_branch: str) -> bool:
    """Whether a build of this branch or tag gets the protected secrets: every tag, and the
    project's default branch."""
    return bool(tag) or (bool(branch) and branch == default_branch)
