"""Rate limits: requests per caller, and failed logins per account and per address.

Both use the ``RateLimiter`` port's token buckets, under separate keys.

``RateLimitMiddleware`` takes one token per request: from the caller's bucket when it is
authenticated (``request.state.principal`` when an outer layer set it, else the principal
its bearer token names, asked of the ``Authenticator`` whose cache then answers the route's
own check), else from its address's bucket (IPv6 addresses by their /64: one host has a
whole /64 to pick from). Agents' protocol calls with a valid agent token are not
counted (their pace is the server's own long-poll and heartbeat), nor are liveness and
readiness probes (``/readyz`` shares its checks among callers: see ``application.readiness``).
An empty bucket answers 429 problem+json with ``Retry-After`` (whole seconds, rounded up)
and never reaches the routes, so it is not in the audit log either: a flood must not fill it.

``LoginThrottle`` (``app.state.login_throttle``) is for the login route, which calls it
around the password check: ``check`` before (raises ``RateLimited``: 429 with Retry-After),
then ``failed`` or ``succeeded``. Only failures take tokens; a success fills its account's
bucket again, not its address's (one valid account must not unlock guessing others').
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ferrous.api.client_ip import client_ip
from ferrous.api.errors import Unauthenticated, ferrous_error, retry_after_seconds
from ferrous.application.guard_ports import RateLimiter
from ferrous.domain.access import Principal
from ferrous.domain.errors import FerrousError, RateLimited

log = structlog.get_logger(__name__)

AGENT_PROTOCOL = "/api/v1/agent/"
AGENT_REGISTRATION = "/api/v1/agent/register"
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestLimits:
    """Requests per second and bucket sizes; a rate of 0 switches that limit off."""

    per_ip: float = 20.0
    ip_burst: int = 100
    per_user: float = 50.0
    user_burst: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginLimits:
    """Failed logins allowed per ``window`` seconds; 0 switches that limit off."""

    failures_per_account: int = 5
    failures_per_ip: int = 20
    window: float = 900.0


def address_key(ip: str | None) -> str:
    """The bucket of an address: IPv4 as it is, IPv6 by its /64."""
    if ip is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]  # not an address (a test client's name): as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is that IPv4 address
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter | None, limits: RequestLimits) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limiter is None or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        bucket = await self._bucket(scope)
        if bucket is not None:
            key, rate, burst = bucket
            wait = await self.limiter.take(key, rate, burst)
            if wait > 0:
                log.info("rate_limited", bucket=key.partition(":")[0], path=scope["path"])
                message = f"too many requests: try again in {retry_after_seconds(wait)} s"
                request = Request(scope, receive)
                response = await ferrous_error(request, RateLimited(wait, message))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _bucket(self, scope: Scope) -> tuple[str, float, int] | None:
        """The bucket this request takes its token from; None: not limited."""
        limits = self.limits
        path: str = scope["path"]
        agent_call = path.startswith(AGENT_PROTOCOL) and path != AGENT_REGISTRATION
        token = _bearer_token(scope)
        if agent_call and token and await _is_agent(scope, token):
            return None
        principal = (scope.get("state") or {}).get("principal")
        if principal is None and token and not agent_call:
            principal = await _caller(scope, token)
        if principal is not None:
            if limits.per_user <= 0:
                return None
            return f"user:{principal.kind}:{principal.id}", limits.per_user, limits.user_burst
        if limits.per_ip <= 0:
            return None
        return f"ip:{address_key(client_ip(scope))}", limits.per_ip, limits.ip_burst


def _bearer_token(scope: Scope) -> str | None:
    header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    scheme, _, token = header.decode("latin-1").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _is_agent(scope: Scope, token: str) -> bool:
    """The token is a valid agent token (answered from the agents' token cache)."""
    authenticator = getattr(scope["app"].state, "agent_authenticator", None)
    if authenticator is None:
        return False
    try:
        await authenticator.agent_id(token)
    except Unauthenticated:
        return False
    return True


async def _caller(scope: Scope, token: str) -> Principal | None:
    """Who the token names, before the route's own authentication runs (its answers are
    cached, so the route's check costs nothing more); None for a token naming nobody."""
    services = getattr(scope["app"].state, "services", None)
    authenticator = getattr(services, "authenticator", None)
    if authenticator is None:
        return None
    try:
        found = await authenticator.authenticate(token)
    except FerrousError:  # refused, or the store is away: counted by address
        return None
    principal: Principal = found.principal
    return principal


class LoginThrottle:
    def __init__(self, limiter: RateLimiter | None, limits: LoginLimits) -> None:
        """Without a limiter nothing is throttled (an API built without one, in tests)."""
        self.limiter = limiter
        self.limits = limits

    def _account(self, username: str) -> tuple[str, float, int] | None:
        count = self.limits.failures_per_account
        if count <= 0:
            return None
        return (
            f"login:account:{username.strip().casefold()[:255]}",
            count / self.limits.window,
            count,
        )

    def _address(self, ip: str | None) -> tuple[str, float, int] | None:
        count = self.limits.failures_per_ip
        if count <= 0:
            return None
        return f"login:ip:{address_key(ip)}", count / self.limits.window, count

    def _buckets(self, username: str, ip: str | None) -> list[tuple[str, float, int]]:
        return [b for b in (self._account(username), self._address(ip)) if b is not None]

    async def check(self, username: str, ip: str | None) -> None:
        """Before the password is checked: raises RateLimited when the account or the
        address has used up its failures (whether or not the account exists)."""
        if self.limiter is None:
            return
        wait = max(
            [await self.limiter.peek(*bucket) for bucket in self._buckets(username, ip)] or [0.0]
        )
        if wait > 0:
            log.info("login_throttled", ip=ip)
            raise RateLimited(
                wait, f"too many failed logins: try again in {retry_after_seconds(wait)} s"
            )

    async def failed(self, username: str, ip: str | None) -> None:
        """A wrong password or an unknown or disabled account: count it against both."""
        if self.limiter is None:
            return
        for bucket in self._buckets(username, ip):
            await self.limiter.take(*bucket)

    async def succeeded(self, username: str, ip: str | None) -> None:
        """The account's failures are forgiven; its address's are not."""
        account = self._account(username)
        if self.limiter is not None and account is not None:
            await self.limiter.reset(account[0])
