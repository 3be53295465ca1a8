"""core: the evidence log, for the in-memory expertise index

`evidence_sequences.seq` numbers, per workspace, the transactions that wrote or removed
evidence; `evidence_batches` maps each such transaction's token to its number; the token is
stamped on the evidence it wrote (`evidence.batch`) and the removals it logged
(`evidence_removals`). See store/evidence_log.py. Existing evidence keeps a NULL batch:
every index loads it when built.

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-23 06:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_sequences",
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_table(
        "evidence_batches",
        sa.Column("token", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("committed_at", store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token", "tenant"),
    )
    op.create_index("ix_evidence_batches_seq", "evidence_batches", ["tenant", "seq"])
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("batch", sa.BigInteger(), nullable=True))
    op.create_index("ix_evidence_batch", "evidence", ["batch"])
    op.create_table(
        "evidence_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("topic_key", sa.String(length=200), nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", store.models.base.UTCDateTime(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evidence_removals_batch", "evidence_removals", ["batch"])


def downgrade() -> None:
    op.drop_index("ix_evidence_removals_batch", table_name="evidence_removals")
    op.drop_table("evidence_removals")
    op.drop_index("ix_evidence_batch", table_name="evidence")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("batch")
    op.drop_index("ix_evidence_batches_seq", table_name="evidence_batches")
    op.drop_table("evidence_batches")
    op.drop_table("evidence_sequences")
