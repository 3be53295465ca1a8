"""jobs: when each periodic job last ran, so every process honours its period

Revision ID: jobs_0001
Revises: 0001_core
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "jobs_0001"
down_revision = "0001_core"
branch_labels = ("jobs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("last_started_at", store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_finished_at", store.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
