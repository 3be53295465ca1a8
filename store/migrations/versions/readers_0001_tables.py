"""readers: who read which message (read receipts: Matrix's public m.read)

Revision ID: readers_0001
Revises: 0001_core
Create Date: 2026-12-01 02:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "readers_0001"
down_revision = "0001_core"
branch_labels = ("readers",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_external_id", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("read_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_message_reads_person_id_people"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_reads")),
        sa.UniqueConstraint("tenant", "conversation_id", "message_external_id", "person_id",
                            name=op.f("uq_message_reads_tenant_conversation_id_message_external_id_person_id")),
    )
    op.create_index("ix_message_reads_conv_time", "message_reads", ["tenant", "conversation_id", "read_at"])
    op.create_index(op.f("ix_message_reads_person_id"), "message_reads", ["person_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_message_reads_person_id"), table_name="message_reads")
    op.drop_index("ix_message_reads_conv_time", table_name="message_reads")
    op.drop_table("message_reads")
