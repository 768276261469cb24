"""fleet: workers registry, lanes, run-time settings, provider pauses

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
ACTIVE = sa.text("status IN ('pending', 'running')")


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("queues", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("concurrency", sa.Integer(), server_default="1", nullable=False),
        sa.Column("providers", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="idle", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("drain_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('idle', 'busy', 'draining', 'offline')",
                           name=op.f("ck_workers_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"], unique=False)
    op.create_table(
        "lanes",
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=True),
        sa.Column("project_concurrency", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("max_concurrency IS NULL OR max_concurrency >= 0",
                           name=op.f("ck_lanes_max")),
        sa.CheckConstraint("project_concurrency IS NULL OR project_concurrency >= 0",
                           name=op.f("ck_lanes_project")),
        sa.PrimaryKeyConstraint("type", name=op.f("pk_lanes")),
    )
    op.create_table(
        "runtime_settings",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_runtime_settings")),
    )
    op.create_table(
        "provider_pauses",
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_provider_pauses")),
    )
    op.create_index("ix_tasks_active_lane", "tasks", ["type", "project_id", "status"],
                    unique=False, postgresql_where=ACTIVE)


def downgrade() -> None:
    op.drop_index("ix_tasks_active_lane", table_name="tasks", postgresql_where=ACTIVE)
    op.drop_table("provider_pauses")
    op.drop_table("runtime_settings")
    op.drop_table("lanes")
    op.drop_index("ix_workers_last_seen", table_name="workers")
    op.drop_table("workers")
