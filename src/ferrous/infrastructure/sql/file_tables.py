"""The tables of artifacts, caches, test reports and archived logs (migration 0011)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ferrous.infrastructure.sql.table_metadata import ID, metadata
from ferrous.infrastructure.sql.types import JSON_TYPE, UtcDateTime

#: One row per stored archive of a job: ``kind`` is ``archive`` (``artifacts:paths``) or
#: ``junit`` (``artifacts:reports:junit`` files); a new upload of the same kind replaces it.
#: ``entries`` lists the archive's members (``[[path, size, kind], ...]``, capped) so a
#: listing never reads the object. The cleanup walks ``expires_at``.
artifacts = Table(
    "artifacts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("job_id", ID, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("build_id", ID, nullable=False),
    Column("project_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("object_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),  # stored (compressed) bytes
    Column("sha256", String(64), nullable=False),  # of the stored bytes
    Column("files", Integer, nullable=False),
    Column("entries", JSON_TYPE, nullable=True),
    Column("entries_truncated", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),  # NULL: never
    UniqueConstraint("job_id", "kind"),
    Index(None, "build_id"),
    Index(None, "expires_at"),
    Index(None, "object_key"),  # the orphan sweep asks which keys rows still name
)

#: A project's caches by key; ``scope`` (``protected`` or ``unprotected``) keeps caches of
#: protected refs apart, so an unprotected branch cannot poison what a release build restores.
caches = Table(
    "caches",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("key", String(255), nullable=False),
    Column("object_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "scope", "key"),
    Index(None, "last_used_at"),
    Index(None, "object_key"),
)

#: Per-test results of JUnit reports. ``test_key`` (a hash of suite, class and name) indexes a
#: test's history across builds: durations and statuses for ETAs, flaky-test detection and
#: test splitting.
test_cases = Table(
    "test_cases",
    metadata,
    Column("id", ID, primary_key=True),
    Column("job_id", ID, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("build_id", ID, nullable=False),
    Column("project_id", ID, nullable=False),
    Column("position", Integer, nullable=False),
    Column("suite", Text, nullable=False),
    Column("class_name", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("file", Text, nullable=True),
    Column("duration", Float, nullable=True),  # seconds
    Column("status", String(16), nullable=False),  # passed | failed | error | skipped
    Column("failure", Text, nullable=True),  # message and text, capped
    Column("test_key", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "build_id", "status"),
    Index(None, "job_id", "position"),
    Index(None, "project_id", "test_key", "created_at"),
)

#: A finished job's log once archived to the object store (framed zstd): ``size`` is the
#: log's length in bytes, ``frames`` the ``[raw_offset, stored_offset]`` of each frame, so a
#: byte range reads only the frames it needs. The job's chunks are deleted in the same commit.
job_logs = Table(
    "job_logs",
    metadata,
    Column("job_id", ID, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("object_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("stored_size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the stored bytes
    Column("frames", JSON_TYPE, nullable=False),
    Column("archived_at", UtcDateTime, nullable=False),
    Index(None, "archived_at"),
    Index(None, "object_key"),
)
