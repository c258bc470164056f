"""Readiness: can this server do its work now? (``/readyz``, a Kubernetes readiness probe.)

Liveness (``/healthz``) only says the process answers; readiness asks the backends the
server cannot work without: the database (reachable and migrated to this server's head
revision) and the broker. A server that is not ready is taken out of the load balancer
rather than restarted: it recovers by itself once the backend is back.

Each probe is an ``async`` callable that returns when its component is fine and raises
otherwise: ``NotReady`` when the component answers but cannot serve (the reason is its
message: "not migrated: ..."), anything else when it cannot be reached ("unreachable: " and
the error). Probes run concurrently, each within
``timeout`` seconds, so a hung backend answers "not ready" in time for the prober's own
timeout instead of hanging the probe.

The probe endpoint is public and not rate-limited, so checks are shared: callers arriving
while a check runs wait for that check, and a result younger than ``max_age`` seconds is
answered again. However often it is called, a server probes each backend at most once per
``max_age``.

Changes are logged once each (``component_not_ready`` / ``component_ready``), not on every
probe: a prober calling every few seconds must not flood the logs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from ferrous.domain.errors import FerrousError, NotReady

log = structlog.get_logger(__name__)

Probe = Callable[[], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]

OK = "ok"
#: a reason is cut to this many characters (it is shown to anyone who asks)
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Readiness:
    """``checks`` maps each component to ``"ok"`` or why it is not ready."""

    checks: Mapping[str, str]

    @property
    def ready(self) -> bool:
        return all(state == OK for state in self.checks.values())


class ReadinessCheck:
    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        timeout: float = 2.0,
        max_age: float = 1.0,
        closers: Sequence[Closer] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``closers`` release what the probes hold (a probe's own engine) on ``aclose``."""
        self._probes = dict(probes)
        self._timeout = timeout
        self._max_age = max_age
        self._closers = tuple(closers)
        self._clock = clock
        self._last: tuple[float, Readiness] | None = None
        self._running: asyncio.Task[Readiness] | None = None
        self._states: dict[str, str] = {}

    async def check(self) -> Readiness:
        last = self._last
        if last is not None and self._clock() - last[0] < self._max_age:
            return last[1]
        if self._running is None:
            self._running = asyncio.create_task(self._check_all(), name="readiness")
            self._running.add_done_callback(self._finished)
        # shielded: a caller that leaves (its client hung up) does not cancel the others' check
        return await asyncio.shield(self._running)

    async def aclose(self) -> None:
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
        for close in self._closers:
            await close()

    def _finished(self, task: asyncio.Task[Readiness]) -> None:
        self._running = None
        if not task.cancelled() and task.exception() is None:
            self._last = (self._clock(), task.result())

    async def _check_all(self) -> Readiness:
        names = list(self._probes)
        states = await asyncio.gather(*(self._check_one(self._probes[name]) for name in names))
        checks = dict(zip(names, states, strict=True))
        for name, state in checks.items():
            self._note_change(name, state)
        return Readiness(checks)

    async def _check_one(self, probe: Probe) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await probe()
        except TimeoutError:
            return f"unreachable: no answer within {self._timeout:g} s"
        except NotReady as exc:  # it answers, and says why it cannot serve
            return exc.message[:MAX_REASON]
        except FerrousError as exc:  # an adapter's own words (BrokerUnavailable, ...)
            return f"unreachable: {exc.message}"[:MAX_REASON]
        except Exception as exc:  # a driver's error
            return f"unreachable: {describe(exc)}"[:MAX_REASON]
        return OK

    def _note_change(self, name: str, state: str) -> None:
        before = self._states.get(name)
        self._states[name] = state
        if state == before or (before is None and state == OK):
            return
        if state == OK:
            log.info("component_ready", component=name)
        else:
            log.warning("component_not_ready", component=name, reason=state)


def describe(exc: BaseException) -> str:
    """``ConnectionRefusedError: [Errno 111] ...``: the exception's type and first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
