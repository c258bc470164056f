"""The tables of notification rules and their deliveries (migration 0012)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ferrous.infrastructure.sql.table_metadata import ID, metadata
from ferrous.infrastructure.sql.types import JSON_TYPE, UtcDateTime

#: ``notification_rules.on_events`` and ``branches`` are JSON arrays; ``secret`` is sealed by
#: the secret box. ``notification_deliveries`` is the notifications' outbox: the unit of work
#: inserts one row per matching rule in the commit that finished a build, unique per (rule,
#: build, completion: the build's version then), so a repeated commit never queues twice;
#: ``next_attempt_at`` is NULL once settled (``ix_notification_deliveries_due`` covers the
#: pending ones, the sender's only query). ``payload`` is the notice, sent as stored.
notification_rules = Table(
    "notification_rules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("on_events", JSON_TYPE, nullable=False),
    Column("branches", JSON_TYPE, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("secret", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project_id", "created_at"),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("rule_id", ID, ForeignKey("notification_rules.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("build_id", ID, ForeignKey("builds.id", ondelete="CASCADE"), nullable=True),
    Column("completion", Integer, nullable=True),  # NULL: a test delivery
    Column("event", String(32), nullable=False),
    Column("payload", JSON_TYPE, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),  # NULL: settled
    Column("last_error", Text, nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    UniqueConstraint("rule_id", "build_id", "completion"),
    Index(
        "ix_notification_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("next_attempt_at IS NOT NULL"),
        sqlite_where=text("next_attempt_at IS NOT NULL"),
    ),
    Index(None, "rule_id", "id"),
    Index(None, "created_at"),
)
