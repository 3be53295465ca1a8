"""inbox: the durable inbox every delivery is written to before it is acknowledged

Revision ID: inbox_0001
Revises: 0001_core
Create Date: 2026-11-30 14:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "inbox_0001"
down_revision = "0001_core"
branch_labels = ("inbox",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.Column("order_key", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(length=80), nullable=False),
        sa.Column("locked_until", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("done_at", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("platform", "dedupe_key", name=op.f("uq_inbox_events_platform_dedupe_key")),
    )
    op.create_index("ix_inbox_events_due", "inbox_events", ["state", "next_attempt_at"], unique=False)
    op.create_index("ix_inbox_events_order", "inbox_events", ["order_key", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbox_events_order", table_name="inbox_events")
    op.drop_index("ix_inbox_events_due", table_name="inbox_events")
    op.drop_table("inbox_events")
