"""Teams conversation references

Revision ID: teams_0001
Revises: 0001_core
Create Date: 2026-11-23 03:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "teams_0001"
down_revision = "0001_core"
branch_labels = ("teams",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.String(length=300), nullable=False),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("bot_id", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams_references")),
        sa.UniqueConstraint("tenant", "conversation_id", name=op.f("uq_teams_references_tenant_conversation_id")),
    )
    with op.batch_alter_table("teams_references", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_teams_references_tenant"), ["tenant"], unique=False)
        batch_op.create_index("ix_teams_references_user", ["tenant", "user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("teams_references", schema=None) as batch_op:
        batch_op.drop_index("ix_teams_references_user")
        batch_op.drop_index(batch_op.f("ix_teams_references_tenant"))
    op.drop_table("teams_references")
