"""What use cases get besides their unit of work: a clock, the git sources, the secret box,
the limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ferrous.application.identity_ports import AccessTokens, PasswordHasher
from ferrous.application.metrics import Metrics, NoMetrics
from ferrous.application.ports import Clock, SecretBox
from ferrous.application.source_ports import SourceRepository
from ferrous.application.storage_ports import ObjectStore
from ferrous.application.test_reports import TestCaseStore
from ferrous.application.webhooks import WebhookParser


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependencies:
    clock: Clock
    sources: SourceRepository
    #: Seals secrets at rest (repository credentials, secret variables); None: none can be kept.
    secret_box: SecretBox | None = None
    lease_timeout: timedelta = timedelta(seconds=60)
    server_url: str = "http://127.0.0.1:8000"
    max_log_bytes: int = 100 * 1024 * 1024  # per job; the rest is cut with a note
    #: What one archive may expand to, told to agents with each claim; None: no cap.
    max_unpacked_bytes: int | None = None
    #: Each forge's webhook reader, by the name in the hook URL (``github``, ``gitlab``, ...).
    webhook_parsers: Mapping[str, WebhookParser] = field(default_factory=dict)
    #: Hashes people's passwords; None: nobody can sign in with a password.
    passwords: PasswordHasher | None = None
    #: Signs and checks access tokens (JWT); None: nobody can sign in with a password.
    access_tokens: AccessTokens | None = None
    access_token_ttl: timedelta = timedelta(minutes=15)
    #: how long a sign-in lasts, refreshed or not (sessions do not slide)
    session_ttl: timedelta = timedelta(days=30)
    #: Where artifacts, caches and archived logs live; None: nowhere (they are refused).
    objects: ObjectStore | None = None
    #: Where the test cases of JUnit reports are kept; None: reports are not read.
    test_cases: TestCaseStore | None = None
    #: This server's observations (queue waits, durations, log bytes); default: none.
    metrics: Metrics = field(default_factory=NoMetrics)
