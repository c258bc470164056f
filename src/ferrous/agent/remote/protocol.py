"""The agent protocol's vocabulary, shared by its client and its users: the errors a call
raises, how calls are retried, and the Protocols a worker sees the server through
(``AgentClient`` implements them; tests may pass anything that does).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ferrous.agent.remote.streams import Downloaded
from ferrous.domain.errors import FerrousError
from ferrous.domain.phases import Phase


class AgentProtocolError(FerrousError):
    """The server refused an agent protocol call."""

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(AgentProtocolError):
    """The server does not accept this agent's token: register the agent again."""


class LeaseLost(AgentProtocolError):
    """This agent no longer holds the job (canceled, finished or taken over)."""

    def __init__(
        self, message: str | None = None, *, status: int | None = None, size: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.size = size  # the job log's size on the server, when it said


class ServerUnavailable(AgentProtocolError):
    """The server could not be reached; retrying did not help."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay n is between half and all of
    ``min(max_delay, initial * 2**n)``; give up after ``give_up_after`` seconds (None: never)."""

    initial: float = 0.2
    max_delay: float = 10.0
    give_up_after: float | None = 600.0

    def delay(self, attempt: int) -> float:
        cap = min(self.max_delay, self.initial * 2 ** min(attempt, 30))
        return random.uniform(cap / 2, cap)


class FileApi(Protocol):
    """The server's artifacts and caches, as ``AgentClient`` reaches them (see there)."""

    async def upload_artifacts(
        self, job_id: str, kind: str, source: Path, sha256: str, *, name: str | None = None
    ) -> dict[str, Any]: ...

    async def download_artifacts(
        self, job_id: str, source_job_id: str, target: Path
    ) -> Downloaded | None: ...

    async def upload_cache(
        self, job_id: str, key: str, source: Path, sha256: str
    ) -> dict[str, Any]: ...

    async def download_cache(self, job_id: str, key: str, target: Path) -> Downloaded | None: ...


class AgentApi(FileApi, Protocol):
    """What a worker needs of the server (``AgentClient`` implements it).

    Every method may be called concurrently with the others from one event loop; each may
    raise ``ServerUnavailable``, ``Unauthorized`` or ``AgentProtocolError``, and the last two
    ``LeaseLost``. Cancelling a call abandons it: a claim abandoned while the server was
    leasing a job leaves that job leased to this agent until the server notices.
    """

    async def claim(self) -> dict[str, Any] | None: ...

    async def heartbeat(self, running: Sequence[str]) -> list[str]: ...

    async def append_log(self, job_id: str, offset: int, data: bytes) -> int: ...

    async def complete(
        self,
        job_id: str,
        attempt: int,
        exit_code: int | None,
        failure_reason: str | None,
        coverage: float | None = None,
        phases: Sequence[Phase] = (),
    ) -> str: ...
