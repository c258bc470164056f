"""The caller's address: the peer's, or behind trusted proxies the nearest untrusted hop."""

from __future__ import annotations

import pytest

from ferrous.api.client_ip import TrustedProxies
from ferrous.domain.errors import ConfigInvalid

PROXIES = TrustedProxies(["10.0.0.0/8", "192.0.2.10", "2001:db8:1::/48"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: the header is ignored
        ("10.1.1.1", [], "10.1.1.1"),
        ("10.1.1.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.1.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client wrote 6.6.6.6
        ("10.1.1.1", ["198.51.100.1, 192.0.2.10, 10.2.2.2"], "198.51.100.1"),
        ("10.1.1.1", ["198.51.100.1", "10.2.2.2"], "198.51.100.1"),  # two header lines
        ("10.1.1.1", ["10.3.3.3, 10.2.2.2"], "10.3.3.3"),  # proxies all the way: the first
        ("10.1.1.1", ["not-an-ip, 10.2.2.2"], "10.2.2.2"),  # garbage: the last proxy
        ("10.1.1.1", ["unknown"], "10.1.1.1"),
        ("2001:db8:1::5", ["2001:db8:2::9"], "2001:db8:2::9"),
        (None, ["198.51.100.1"], None),
    ],
)
def test_the_client_address(peer: str | None, forwarded: list[str], client: str | None) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_no_proxies_trusts_nobody() -> None:
    nobody = TrustedProxies()
    assert not nobody
    assert nobody.client("127.0.0.1", ["198.51.100.1"]) == "127.0.0.1"


def test_entries_must_be_addresses_or_networks() -> None:
    with pytest.raises(ConfigInvalid, match=r"FERROUS_TRUSTED_PROXIES: 'proxy\.local'"):
        TrustedProxies(["proxy.local"])
