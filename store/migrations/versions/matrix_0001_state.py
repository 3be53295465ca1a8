"""matrix: the sync loop's durable state (sync token, lease, forms, reactions, cards, direct chats)

Revision ID: matrix_0001
Revises: 0001_core
Create Date: 2026-12-01 02:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "matrix_0001"
down_revision = "0001_core"
branch_labels = ("matrix",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matrix_state",
        sa.Column("account", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "name", name=op.f("pk_matrix_state")),
    )


def downgrade() -> None:
    op.drop_table("matrix_state")
