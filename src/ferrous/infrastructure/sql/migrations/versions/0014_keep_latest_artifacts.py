"""Projects keep the artifacts of each ref's latest successful build (on by default).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types. Existing projects keep them
too, as GitLab's "Keep artifacts from most recent successful jobs" does by default. The
index answers "is there a newer successful build of this pipeline and ref?" with one probe,
for every expired artifact the cleanup and the reads look at. The ``object_key`` indexes let
the orphan sweep ask which of 500 stored keys rows still name without scanning the tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_builds_pipeline_id_ref_status_number"
KEYED = ("artifacts", "caches", "job_logs")


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column(
            "keep_latest_artifacts", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
    )
    op.create_index(INDEX, "builds", ["pipeline_id", "ref", "status", "number"])
    for table in KEYED:
        op.create_index(f"ix_{table}_object_key", table, ["object_key"])


def downgrade() -> None:
    for table in KEYED:
        op.drop_index(f"ix_{table}_object_key", table_name=table)
    op.drop_index(INDEX, table_name="builds")
    # Not a batch: SQLite would rebuild projects, and with foreign keys on, dropping the old
    # table deletes every pipeline through ON DELETE CASCADE. SQLite 3.35+ drops a column.
    op.execute("ALTER TABLE projects DROP COLUMN keep_latest_artifacts")
