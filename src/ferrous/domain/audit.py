"""The audit log: who changed what, from where, and what the server answered.

One entry per state-changing request (and per login attempt), written by the API edge after
the answer's status is known, in a transaction of its own: a refused or failed change is
recorded too, with its status. Entries are never changed nor deleted: the log's port offers
``record`` and ``query`` only, so no code path can rewrite the history it is meant to keep.

``action`` is the method and the route's template (``POST /api/v1/projects/{project}/
pipelines``), not the concrete path, so that one filter finds every call of a route;
``target`` holds the template's parameters (``{"project": "demo"}``). Text that comes from
the caller (a login's attempted username, a path parameter) is cut to the columns' sizes:
an unauthenticated caller must not be able to write large rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ferrous.domain.ids import new_id

MAX_NAME = 255
MAX_ACTION = 300
MAX_TARGET_VALUE = 255
MAX_TARGET_KEYS = 10
MAX_IP = 64
MAX_REQUEST_ID = 128


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    id: str
    at: datetime
    action: str  # "POST /api/v1/projects/{project}/pipelines"
    result: int  # the HTTP status answered
    target: Mapping[str, str] = field(default_factory=dict)  # the route's path parameters
    actor_kind: str | None = None  # user, service, agent, webhook; None: anonymous
    actor_id: str | None = None
    actor_name: str | None = None  # username, token or agent name, attempted login, forge
    role: str | None = None
    source_ip: str | None = None
    request_id: str | None = None

    @classmethod
    def create(
        cls,
        *,
        at: datetime,
        action: str,
        result: int,
        target: Mapping[str, str] | None = None,
        actor_kind: str | None = None,
        actor_id: str | None = None,
        actor_name: str | None = None,
        role: str | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
    ) -> AuditEntry:
        """A new entry, with a time-ordered id and caller-given text cut to size."""
        if at.tzinfo is None:
            raise ValueError("an audit entry's time must be aware (UTC)")
        kept = dict(list((target or {}).items())[:MAX_TARGET_KEYS])
        return cls(
            id=new_id(),
            at=at,
            action=action[:MAX_ACTION],
            result=result,
            target={str(k)[:MAX_NAME]: str(v)[:MAX_TARGET_VALUE] for k, v in kept.items()},
            actor_kind=actor_kind,
            actor_id=_cut(actor_id, MAX_NAME),
            actor_name=_cut(actor_name, MAX_NAME),
            role=role,
            source_ip=_cut(source_ip, MAX_IP),
            request_id=_cut(request_id, MAX_REQUEST_ID),
        )

    @property
    def anonymous(self) -> bool:
        return self.actor_kind is None and self.actor_name is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """What ``AuditLog.query`` keeps; every given condition must hold."""

    actor: str | None = None  # the actor's id or name
    action_prefix: str | None = None  # "POST /api/v1/auth/", "DELETE "
    since: datetime | None = None  # at >= since
    until: datetime | None = None  # at < until
    result: int | None = None  # the exact HTTP status

    def matches(self, entry: AuditEntry) -> bool:
        """The rule the SQL adapter's WHERE repeats (the contract tests hold them equal)."""
        if self.actor is not None and self.actor not in (entry.actor_id, entry.actor_name):
            return False
        if self.action_prefix is not None and not entry.action.startswith(self.action_prefix):
            return False
        if self.since is not None and entry.at < self.since:
            return False
        if self.until is not None and entry.at >= self.until:
            return False
        return self.result is None or entry.result == self.result
