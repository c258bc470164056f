"""Settings: one typed object, read once at startup from FERROUS_* variables and flags.

Precedence: a command-line flag beats the environment, which beats the default. Nothing reads
the environment at import time, so tests and several servers in one process stay independent.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ferrous.domain.errors import ConfigInvalid

PREFIX = "FERROUS_"


class Settings(BaseModel):
    data_dir: Path = Field(default=Path(".ferrous-data"), description="Where SQLite, logs, ...")
    database_url: str | None = Field(default=None, description="Default: SQLite in data_dir")
    broker_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None  # how people and agents reach this server
    agents: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0, le=256)
    agent_labels: tuple[str, ...] = ()
    agent_registration_token: str | None = None
    #: AES-GCM keys for secrets at rest (base64, comma-separated, newest first); default:
    #: the key file ``data_dir/secret.key``, made on first use (``security.secret_box``)
    secret_key: str | None = Field(default=None, repr=False)
    #: signs access tokens (HS256, at least 32 characters); default: derived from the
    #: newest secret key, so every server of an installation agrees
    jwt_key: str | None = Field(default=None, repr=False, min_length=32)
    access_token_ttl: float = Field(default=900.0, gt=0)  # seconds an access token lasts
    session_ttl: float = Field(default=30 * 86400.0, gt=0)  # seconds a sign-in lasts
    #: the first admin's password, used once when there is no user yet; default: generated
    #: and printed on stderr
    admin_password: str | None = Field(default=None, repr=False)
    lease_timeout: float = Field(default=60.0, gt=0)
    claim_timeout: float = Field(default=25.0, gt=0)
    #: the schedule firer looks for schedules changed on other servers at least this often
    schedule_poll: float = Field(default=30.0, gt=0)
    #: webhook bodies larger than this are refused with 413 (GitHub caps its own at 25 MB)
    webhook_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    log_level: str = "info"
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    #: seconds /readyz waits for each backend (database, broker) before calling it unreachable
    readiness_timeout: float = Field(default=2.0, gt=0)
    #: record every state-changing request in the audit log (false: record nothing)
    audit_log: bool = True
    #: when set, /metrics answers only ``Authorization: Bearer <this token>`` (else 401)
    metrics_token: str | None = Field(default=None, repr=False)
    #: browser origins allowed to call the API (CORS); empty: no CORS headers at all
    cors_origins: tuple[str, ...] = ()
    #: peers whose X-Forwarded-For is believed: addresses or networks (10.0.0.0/8)
    trusted_proxies: tuple[str, ...] = ()
    #: where rate limit buckets live: memory:// or redis://...; default: the broker's Redis
    rate_limit_url: str | None = Field(default=None, repr=False)
    rate_limit_per_ip: float = Field(default=20.0, ge=0)  # requests per second; 0: no limit
    rate_limit_ip_burst: int = Field(default=100, ge=1)
    rate_limit_per_user: float = Field(default=50.0, ge=0)
    rate_limit_user_burst: int = Field(default=200, ge=1)
    #: failed logins allowed per login_failure_window (seconds); 0: no limit
    login_failures_per_account: int = Field(default=5, ge=0)
    login_failures_per_ip: int = Field(default=20, ge=0)
    login_failure_window: float = Field(default=900.0, gt=0)
    #: HTTPS: a PEM certificate (chain) and its private key; both or neither
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: where artifacts, caches and archived logs go: ``s3://bucket/prefix`` or
    #: ``file:///path``; default: the folder ``data_dir/objects``
    storage_url: str | None = None
    #: S3-compatible storage: endpoint (MinIO, Ceph, ...), region and credentials; unset:
    #: botocore's own defaults (AWS_* variables, instance roles)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = Field(default=None, repr=False)
    s3_secret_access_key: str | None = Field(default=None, repr=False)
    artifact_max_bytes: int = Field(default=5 * 1024**3, gt=0)  # one upload (archive or cache)
    #: what one archive may expand to: past it, a decompression bomb is refused
    artifact_max_unpacked_bytes: int = Field(default=50 * 1024**3, gt=0)
    #: `artifacts:expire_in` of jobs that give none, unless their project sets one ("never")
    artifacts_expire_in: str = "30 days"
    log_max_age_days: float = Field(default=0.0, ge=0)  # archived logs older: deleted; 0 keeps
    log_max_total_bytes: int = Field(default=0, ge=0)  # oldest archived logs past it; 0: none
    cache_max_age_days: float = Field(default=14.0, ge=0)  # unused for this long: deleted
    cache_max_total_bytes: int = Field(default=0, ge=0)  # least recently used past it
    cleanup_interval: float = Field(default=300.0, gt=0)  # seconds between cleanup passes
    #: the cleanup's orphan sweep (objects no row names; see docs/server.md); false: never
    orphan_sweep: bool = True
    orphan_grace_hours: float = Field(default=24.0, ge=1)  # younger objects are never orphans
    orphan_interval_hours: float = Field(default=24.0, gt=0)  # between sweeps of the store
    #: email notifications: the SMTP relay; unset: email is off
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_starttls: bool = True  # upgrade with STARTTLS and refuse to go on without it
    smtp_tls: bool = False  # implicit TLS from the first byte (port 465 style)
    smtp_verify_certificate: bool = True  # false only for test or self-signed relays
    smtp_ca_file: Path | None = None  # trust this PEM bundle instead of the system's
    smtp_from: str = "Ferrous CI <ferrous@localhost>"
    smtp_timeout: float = Field(default=10.0, gt=0)  # seconds per SMTP connection step

    model_config = {"frozen": True}

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'ferrous.db'}"

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``environ`` (default ``os.environ``) with ``overrides`` (CLI flags) on top.

    Overrides that are None are ignored, so a CLI can pass every flag unconditionally.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = env.get(PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        if field.annotation in (tuple[str, ...],):
            values[name] = tuple(part.strip() for part in raw.split(",") if part.strip())
        else:
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigInvalid(f"invalid settings: {problems}") from exc


def registration_token(settings: Settings) -> str:
    """The agent registration token: configured, or generated once and kept in the data dir."""
    if settings.agent_registration_token:
        return settings.agent_registration_token
    path = settings.data_dir / "agent-registration-token"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = "frr_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
