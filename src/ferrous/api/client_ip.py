"""The caller's address, as rate limits, the audit log and the login throttle see it.

It is the TCP peer, unless the peer is a trusted proxy (``FERROUS_TRUSTED_PROXIES``):
then ``X-Forwarded-For`` is read from the right, skipping trusted addresses, and the first
untrusted one is the client. Reading from the left would believe whatever the client wrote
there itself. Uvicorn's own proxy-header handling is switched off (``ferrous serve``), so
this is the only place that decides.

``ClientIpMiddleware`` stores the answer once per request as ``request.state.client_ip``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ferrous.domain.errors import ConfigInvalid

FORWARDED_FOR = b"x-forwarded-for"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, entries: Iterable[str] = ()) -> None:
        """Addresses or networks; raises ConfigInvalid for anything else."""
        self._networks: list[Network] = []
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigInvalid(
                    f"FERROUS_TRUSTED_PROXIES: {entry!r} is not an address or a network"
                ) from exc

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The client's address: ``peer``, or the nearest untrusted X-Forwarded-For hop."""
        if peer is None or not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        address = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return address  # garbage (or an obfuscated name): stop at the last proxy
            address = hop
            if not self.trusts(hop):
                return hop
        return address


class ClientIpMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            peer = client[0] if client else None
            forwarded = (
                [
                    value.decode("latin-1")
                    for name, value in scope["headers"]
                    if name == FORWARDED_FOR
                ]
                if self.proxies
                else []
            )
            scope.setdefault("state", {})["client_ip"] = self.proxies.client(peer, forwarded)
        await self.app(scope, receive, send)


def client_ip(scope: Scope) -> str | None:
    """The address ``ClientIpMiddleware`` found (the peer's without it)."""
    state = scope.get("state") or {}
    if "client_ip" in state:
        found: str | None = state["client_ip"]
        return found
    client = scope.get("client")
    return client[0] if client else None
