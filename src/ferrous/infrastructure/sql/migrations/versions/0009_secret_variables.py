"""Project and instance secret variables, sealed with the secret box.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types. An instance variable has no
project (``project_id`` NULL); since NULLs never collide in a unique constraint, its name is
unique through a partial index of its own. ``builds.protected_ref`` says whether a build's
jobs get the protected secrets (decided when the build is created; old builds: no).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
INSTANCE = sa.text("project_id IS NULL")


def timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "secret_variables",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("masked", sa.Boolean(), nullable=False),
        timestamp("created_at", False),
        timestamp("updated_at", False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_secret_variables_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_variables")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_secret_variables_project_id_name")),
    )
    op.create_index(
        "uq_secret_variables_instance_name",
        "secret_variables",
        ["name"],
        unique=True,
        postgresql_where=INSTANCE,
        sqlite_where=INSTANCE,
    )
    op.add_column(
        "builds",
        sa.Column("protected_ref", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:  # SQLite rebuilds the table
        batch.drop_column("protected_ref")
    op.drop_index("uq_secret_variables_instance_name", table_name="secret_variables")
    op.drop_table("secret_variables")
