"""Signing the benchmarks in to the servers they start: every API call needs a caller.

A benchmark's server is its own (a fresh data dir or database), so its first admin is made
with ``BENCH_ADMIN_PASSWORD`` (unless ``FERROUS_ADMIN_PASSWORD`` is set already), and
``admin_token`` trades it for a personal API token, sent as ``Authorization: Bearer``. The
per-caller rate limit is switched off with the per-address one: the load is the point.
"""

from __future__ import annotations

import httpx

BENCH_ADMIN_PASSWORD = "ferrous benchmark admin"


def with_admin(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a benchmark's server: its first admin's password, and no request limits."""
    env.setdefault("FERROUS_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
    env.setdefault("FERROUS_RATE_LIMIT_PER_IP", "0")  # the load comes from one address
    env.setdefault("FERROUS_RATE_LIMIT_PER_USER", "0")  # and from one caller
    return env


def admin_token(url: str, password: str) -> str:
    """A personal API token of the first admin of the server at ``url``."""
    with httpx.Client(base_url=url + "/api/v1", timeout=60) as http:
        signed = http.post("/auth/login", json={"username": "admin", "password": password})
        signed.raise_for_status()
        access = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        created = http.post("/tokens", json={"name": "benchmark"}, headers=access)
        created.raise_for_status()
        http.post("/auth/logout", headers=access).raise_for_status()
    return str(created.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
