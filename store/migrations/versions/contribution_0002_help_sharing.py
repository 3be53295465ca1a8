"""contribution: a help request from a private conversation can be shared outside it by its asker

Revision ID: contribution_0002
Revises: contribution_0001
Create Date: 2026-11-23 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "contribution_0002"
down_revision = "contribution_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("help_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shared_at", store.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("shared_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("help_requests", schema=None) as batch_op:
        batch_op.drop_column("shared_by")
        batch_op.drop_column("shared_at")
