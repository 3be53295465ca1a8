"""inbox: delivery steps, what a sending did before its visible step (a Slack file uploaded
but maybe not yet shared), so a retry of the same delivery key finishes it instead of
uploading again

Revision ID: inbox_0003
Revises: inbox_0002
Create Date: 2026-12-01 06:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "inbox_0003"
down_revision = "inbox_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_steps",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("noted_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "step", name=op.f("pk_delivery_steps")),
    )
    op.create_index("ix_delivery_steps_noted_at", "delivery_steps", ["noted_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_steps_noted_at", table_name="delivery_steps")
    op.drop_table("delivery_steps")
