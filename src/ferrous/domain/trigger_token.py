"""Pipeline trigger tokens: secrets that let an external system start a project's builds.

GitLab's pipeline triggers: another CI, a deploy script or a cron job elsewhere holds a
token of one project and starts builds of it (``CI_PIPELINE_SOURCE=trigger``) without a
user account. The token is shown once when it is created and only its hash is kept. Unlike
an agent registration token it has no use count: it stays usable until it is revoked or
expires (``token_state`` with no ``max_uses``), and each use only stamps ``last_used_at``
so that a project's maintainers see which tokens are still in use before revoking one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ferrous.domain.errors import InvalidCredentials
from ferrous.domain.ids import new_id
from ferrous.domain.registration_token import TokenState, checked_description, token_state

#: Plain tokens start with this, so that a leaked one is recognizable (secret scanners, logs).
TRIGGER_TOKEN_PREFIX = "ftt_"


def trigger_token_state(
    *, now: datetime, revoked_at: datetime | None, expires_at: datetime | None
) -> TokenState:
    """Active, revoked or expired (never used up), on plain values for the read models."""
    return token_state(now=now, revoked_at=revoked_at, expires_at=expires_at, max_uses=None, uses=0)


@dataclass(slots=True, kw_only=True)
class TriggerToken:
    id: str
    project_id: str
    description: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def issue(
        cls,
        *,
        project_id: str,
        token_hash: str,
        now: datetime,
        description: str = "",
        expires_at: datetime | None = None,
    ) -> TriggerToken:
        """A new token of ``project_id``; refuses one that has expired already."""
        return cls(
            id=new_id(),
            project_id=project_id,
            description=checked_description(description, now=now, expires_at=expires_at),
            token_hash=token_hash,
            created_at=now,
            expires_at=expires_at,
        )

    def state(self, now: datetime) -> TokenState:
        return trigger_token_state(now=now, revoked_at=self.revoked_at, expires_at=self.expires_at)

    def check_usable(self, now: datetime) -> None:
        """Raises InvalidCredentials saying why the token cannot start a build now."""
        state = self.state(now)
        if state != TokenState.ACTIVE:
            raise InvalidCredentials(f"the trigger token is {state.value}")

    def use(self, now: datetime) -> None:
        """Start one build with it (the in-memory form of the repository's ``use``)."""
        self.check_usable(now)
        self.last_used_at = now

    def revoke(self, now: datetime) -> None:
        """Refuse every later trigger; revoking again keeps the first moment."""
        if self.revoked_at is None:
            self.revoked_at = now
