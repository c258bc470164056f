"""The tables, declared once with SQLAlchemy Core for SQLite and PostgreSQL.

The Alembic migrations must produce exactly this (a test compares them). Decisions:

- Ids are the domain's UUIDv7 strings in ``String(36)`` columns: they sort by creation and a
  malformed id in a URL is simply "not found" on both databases (no cast errors).
- ``jobs.position`` is the plan order inside a build; ``definition`` holds the
  ``JobDefinition`` fields as JSON and ``spec`` the plan's job spec.
- Tags: ``jobs.tags`` is the sorted JSON array (for reading) and ``job_tags`` has one row per
  (job, tag). Claiming filters in SQL with ``NOT EXISTS (a tag of the job not among the
  agent's labels)``, walking ``ix_jobs_claim`` oldest first, so ``LIMIT`` and
  ``FOR UPDATE SKIP LOCKED`` apply to runnable jobs only: an agent never locks (and hides from
  other agents) jobs it cannot run, and no batch can come back empty while a runnable job
  waits behind many unrunnable ones. Tags never change after a job is created.
- Logs: ``log_chunks`` has one row per appended chunk, keyed by (job_id, offset). An append is
  an insert (``ON CONFLICT DO NOTHING`` makes a repeated chunk a no-op); the log's size is the
  end of its last chunk (one index probe) and a byte range is an index range scan. One growing
  row per job would rewrite the whole value on every append in PostgreSQL (TOAST), quadratic
  in the log's size. Chunks have no foreign key: the log store is a separate port that may
  move to object storage.
- ``job_attempts`` carries ``build_id`` so that loading a build reads its attempts in one query.
- ``registration_tokens`` keep the sha256 of the secret only (unique: registration looks a
  token up by it). A use is counted with one ``UPDATE ... SET uses = uses + 1 WHERE`` the
  token is usable, which PostgreSQL re-checks on the newest row after waiting for a
  concurrent registration, so ``max_uses`` is never exceeded.
- ``trigger_tokens`` likewise keep only the hash (unique: a trigger looks its token up by
  it); a trigger stamps ``last_used_at`` with one conditional ``UPDATE`` that repeats the
  "usable" rule, so a revocation committed meanwhile refuses it.
- ``schedules.next_run_at`` is NULL while a schedule is inactive, so the firer's "due" and
  "earliest" queries walk ``ix_schedules_next_run_at`` alone. A schedule is saved with a
  compare-and-set on ``version``: of two servers firing one tick only one commits.
  ``builds.schedule_id`` has no foreign key: deleting a schedule keeps its builds' record
  of who started them. ``builds.auto_cancel`` is the build's
  ``workflow:auto_cancel:on_new_commit``.
- ``status_reports`` is the forges' own outbox: the unit of work inserts a build's report
  in the commit that changed its state (``INSERT ... SELECT`` joined with its project, so
  projects without a forge cost no row). The id orders the reports of one build (its
  changes are serialized by the build's version); ``ix_status_reports_due`` covers the
  unsettled ones, the sender's only query.
- ``secret_variables`` hold the secret box's sealed text only; an instance variable has no
  project, and its name is unique through a partial index (NULLs never collide in the
  ``(project_id, name)`` constraint). ``builds.protected_ref`` is decided when a build is
  created: its jobs get the protected secrets.
- The outbox id is a BIGSERIAL (SQLite: an AUTOINCREMENT rowid, never reused), so the relay
  publishes in commit order; a partial index covers the unpublished rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# Tables declared in modules of their own, gathered here so that ``metadata`` holds them all
from ferrous.infrastructure.sql.file_tables import artifacts, caches, job_logs, test_cases
from ferrous.infrastructure.sql.installation_table import installation
from ferrous.infrastructure.sql.notification_tables import (
    notification_deliveries,
    notification_rules,
)
from ferrous.infrastructure.sql.table_metadata import ID, metadata
from ferrous.infrastructure.sql.types import JSON_TYPE, UtcDateTime

__all__ = [
    "ID",
    "agents",
    "api_tokens",
    "artifacts",
    "audit_log",
    "builds",
    "caches",
    "installation",
    "job_attempts",
    "job_logs",
    "job_tags",
    "jobs",
    "log_chunks",
    "metadata",
    "notification_deliveries",
    "notification_rules",
    "outbox",
    "pipelines",
    "projects",
    "registration_tokens",
    "schedules",
    "secret_variables",
    "sessions",
    "status_reports",
    "test_cases",
    "trigger_tokens",
    "users",
    "webhook_deliveries",
]

projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("repo_url", Text, nullable=False),
    Column("default_branch", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # {"kind": ..., "sealed": ...}: the secret only as the secret box sealed it
    Column("credentials", Text, nullable=True),
    Column("webhook_secret", Text, nullable=True),  # sealed by the secret box
    # where commit statuses go (NULL: nowhere); API URL and repo NULL: derived from repo_url
    Column("forge", String(16), nullable=True),
    Column("forge_api_url", Text, nullable=True),
    Column("forge_repo", String(255), nullable=True),
    Column("forge_token", Text, nullable=True),  # sealed by the secret box
    # `artifacts:expire_in` of jobs that give none (GitLab's wording; NULL: the server's)
    Column("artifacts_expire_in", String(64), nullable=True),
    # the artifacts of each ref's latest successful build outlive their expiry (0014)
    Column("keep_latest_artifacts", Boolean, nullable=False, server_default=text("true")),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("config_path", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("next_number", Integer, nullable=False, server_default=text("1")),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name"),
)

builds = Table(
    "builds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("pipeline_id", ID, ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("ref", String(255), nullable=False),
    Column("sha", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_reason", Text, nullable=True),
    Column("variables", JSON_TYPE, nullable=False),
    Column("problems", JSON_TYPE, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("schedule_id", ID, nullable=True),
    Column("auto_cancel", String(16), nullable=False, server_default=text("'conservative'")),
    Column("protected_ref", Boolean, nullable=False, server_default=text("false")),  # 0009
    # what ``ref`` names (branch, tag, commit) and whether the build ever succeeded (0015)
    Column("ref_kind", String(16), nullable=False, server_default=text("'branch'")),
    Column("has_succeeded", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("pipeline_id", "number"),
    # newest first, unfiltered and by each filter of the listing (keyset on created_at, id)
    Index(None, "created_at", "id"),
    Index(None, "project_id", "created_at", "id"),
    Index(None, "pipeline_id", "created_at", "id"),
    Index(None, "status", "created_at", "id"),
    Index(None, "ref", "created_at", "id"),
    # a newer build of the same pipeline and ref that succeeded? (the latest artifacts, 0015)
    Index(None, "pipeline_id", "ref_kind", "ref", "has_succeeded", "number"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("build_id", ID, ForeignKey("builds.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("stage", String(255), nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("failure_allowed", Boolean, nullable=False),
    Column("agent_id", ID, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("definition", JSON_TYPE, nullable=False),
    Column("spec", JSON_TYPE, nullable=False),
    Column("tags", JSON_TYPE, nullable=False),
    Column("queued_at", UtcDateTime, nullable=True),
    Column("scheduled_for", UtcDateTime, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("coverage", Float, nullable=True),  # percent, from the log by `coverage:`
    UniqueConstraint("build_id", "position"),
    # claim: oldest pending first, plan order among jobs queued together; `with_due_jobs`
    # uses its status prefix (few jobs are scheduled at a time)
    Index("ix_jobs_claim", "status", "queued_at", "build_id", "position"),
    Index(None, "agent_id", "status"),
)

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", ID, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("tag", String(255), nullable=False),
    PrimaryKeyConstraint("job_id", "tag"),
)

job_attempts = Table(
    "job_attempts",
    metadata,
    Column("job_id", ID, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("build_id", ID, ForeignKey("builds.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("agent_id", ID, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    # the phases as its agent timed them ([{name, started_at, finished_at}], at most ten),
    # read only to draw the build's trace (migration 0013); NULL: none were reported
    Column("phases", JSON_TYPE, nullable=True),
    PrimaryKeyConstraint("job_id", "number"),
    Index(None, "build_id"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("labels", JSON_TYPE, nullable=False),
    Column("platform", JSON_TYPE, nullable=False),
    Column("status", String(16), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("embedded", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Index(None, "status", "last_seen_at"),
)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
)

trigger_tokens = Table(
    "trigger_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("description", String(200), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Index(None, "project_id", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("forge", String(20), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("event", String(100), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("build_ids", JSON_TYPE, nullable=False),
    UniqueConstraint("project_id", "forge", "delivery_id"),
    Index(None, "project_id", "received_at", "id"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("pipeline_id", ID, ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False),
    Column("description", String(255), nullable=False),
    Column("cron", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("ref", String(255), nullable=True),
    Column("variables", JSON_TYPE, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("next_run_at", UtcDateTime, nullable=True),
    Column("last_run_at", UtcDateTime, nullable=True),
    Column("last_build_id", ID, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "next_run_at"),
    Index(None, "project_id", "created_at"),
    Index(None, "pipeline_id"),
)

log_chunks = Table(
    "log_chunks",
    metadata,
    Column("job_id", ID, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("job_id", "offset"),
)

status_reports = Table(
    "status_reports",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("build_id", ID, ForeignKey("builds.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", ID, nullable=True),  # NULL: the build's status (no per-job ones yet)
    Column("sha", String(64), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("context", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("description", String(140), nullable=False),
    Column("target_url", Text, nullable=True),  # as sent
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),  # NULL: settled
    Column("outcome", String(16), nullable=True),  # sent, superseded, given_up
    Column("sent_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(
        "ix_status_reports_due",
        "next_attempt_at",
        postgresql_where=text("next_attempt_at IS NOT NULL"),
        sqlite_where=text("next_attempt_at IS NOT NULL"),
    ),
    Index(None, "build_id", "id"),
    Index(None, "project_id", "sha", "context", "id"),
    Index(None, "created_at"),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("name", String(100), nullable=False),
    Column("payload", JSON_TYPE, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
    Index(
        "ix_outbox_unpublished",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
    sqlite_autoincrement=True,
)

# --- users, sessions and API tokens (migration 0008) ---

#: Usernames are stored lowercase, so the unique constraint is case-insensitive on both
#: databases. Users are deactivated, never deleted; saved with a compare-and-set on version.
users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", String(254), nullable=True),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("password_hash", String(255), nullable=True),  # argon2id, encoded
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

#: Only the sha256 of a token is kept (unique: a call looks its token up by it); ``prefix``
#: is its first characters, shown in listings. ``scopes`` is a sorted JSON array.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("scopes", JSON_TYPE, nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index(None, "user_id", "created_at"),
)

#: One row per sign-in: the hash of its current refresh token (earlier ones are refused and
#: revoke the row). Access tokens name the row (``sid``): revoking it stops them too.
sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("refresh_hash", String(128), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("rotated_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Index(None, "user_id"),
)

# --- secret variables (migration 0009) ---

secret_variables = Table(
    "secret_variables",
    metadata,
    Column("id", ID, primary_key=True),
    # NULL: an instance variable, every project's
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(255), nullable=False),
    Column("sealed", Text, nullable=False),  # the secret box's text, never the value
    Column("protected", Boolean, nullable=False),
    Column("masked", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=True),
    UniqueConstraint("project_id", "name"),
    # NULLs never collide in the constraint above: instance names are unique here
    Index(
        "uq_secret_variables_instance_name",
        "name",
        unique=True,
        postgresql_where=text("project_id IS NULL"),
        sqlite_where=text("project_id IS NULL"),
    ),
)

# --- audit log (migration 0010) ---

#: Append-only (``domain.audit``): rows are inserted, never updated. Listings walk
#: (at, id) newest first; an actor's history walks (actor_id, at) or (actor_name, at).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor_kind", String(16), nullable=True),  # NULL: anonymous
    Column("actor_id", String(255), nullable=True),
    Column("actor_name", String(255), nullable=True),
    Column("role", String(16), nullable=True),
    Column("action", String(300), nullable=False),
    Column("target", JSON_TYPE, nullable=False),
    Column("source_ip", String(64), nullable=True),
    Column("result", Integer, nullable=False),
    Column("request_id", String(128), nullable=True),
    Index(None, "at", "id"),
    Index(None, "actor_id", "at"),
    Index(None, "actor_name", "at"),
)
