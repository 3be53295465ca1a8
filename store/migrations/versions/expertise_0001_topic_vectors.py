"""expertise: topic vectors of the meaning tier, one per workspace, model and topic

Revision ID: expertise_0001
Revises: 0001_core
Create Date: 2026-11-30 21:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "expertise_0001"
down_revision = "0001_core"
branch_labels = ("expertise",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "topic_vectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("topic_key", sa.String(length=200), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "model", "topic_key"),
    )


def downgrade() -> None:
    op.drop_table("topic_vectors")
