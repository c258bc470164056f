"""Builds remember that they succeeded and what kind of ref they built, for artifact locks.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types. ``has_succeeded`` is sticky
(a retry does not clear it), backfilled from the status: a build retried before this
migration and not successful now is not known to have succeeded. ``ref_kind`` is ``commit``
where the ref is the sha (no branch or tag was built), ``tag`` where the build's jobs were
given ``CI_COMMIT_TAG`` equal to the ref (the only trace of a tag in older rows), else
``branch``. The latest artifacts' index is keyed on the new columns instead of the status.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX = "ix_builds_pipeline_id_ref_status_number"
INDEX = "ix_builds_pipeline_id_ref_kind_ref_has_succeeded_number"

_builds = sa.table(
    "builds",
    sa.column("id", sa.String),
    sa.column("ref", sa.String),
    sa.column("sha", sa.String),
    sa.column("status", sa.String),
    sa.column("ref_kind", sa.String),
    sa.column("has_succeeded", sa.Boolean),
)
_jobs = sa.table("jobs", sa.column("build_id", sa.String), sa.column("spec", sa.JSON))


def upgrade() -> None:
    op.add_column(
        "builds",
        sa.Column("ref_kind", sa.String(16), server_default=sa.text("'branch'"), nullable=False),
    )
    op.add_column(
        "builds",
        sa.Column("has_succeeded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    b = _builds.c
    op.execute(_builds.update().where(b.status == "success").values(has_succeeded=True))
    op.execute(_builds.update().where(b.ref == b.sha).values(ref_kind="commit"))
    tagged = (
        sa.select(_jobs.c.build_id)
        .where(
            _jobs.c.build_id == b.id,
            _jobs.c.spec[("variables", "CI_COMMIT_TAG")].as_string() == b.ref,
        )
        .exists()
    )
    op.execute(_builds.update().where(b.ref != b.sha, tagged).values(ref_kind="tag"))
    op.drop_index(OLD_INDEX, table_name="builds")
    op.create_index(INDEX, "builds", ["pipeline_id", "ref_kind", "ref", "has_succeeded", "number"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="builds")
    op.create_index(OLD_INDEX, "builds", ["pipeline_id", "ref", "status", "number"])
    # Not a batch: SQLite would rebuild builds, and with foreign keys on, dropping the old
    # table deletes every job through ON DELETE CASCADE. SQLite 3.35+ drops a column.
    op.execute("ALTER TABLE builds DROP COLUMN has_succeeded")
    op.execute("ALTER TABLE builds DROP COLUMN ref_kind")
