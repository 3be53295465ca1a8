"""core: sequence evidence writes and log removals, for the in-memory expertise index

`evidence_sequences.seq` numbers, per workspace, the transactions that wrote or removed evidence,
`evidence.seq` and `evidence_removals.seq` say which transaction did it (see
store/evidence_log.py). Existing rows get sequence 0: every index loads them when built.

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
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    op.execute("UPDATE evidence SET seq = 0")
    op.create_index("ix_evidence_seq", "evidence", ["tenant", "seq"])
    op.create_table(
        "evidence_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("topic_key", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("removed_at", store.models.base.UTCDateTime(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evidence_removals_seq", "evidence_removals", ["tenant", "seq"])


def downgrade() -> None:
    op.drop_index("ix_evidence_removals_seq", table_name="evidence_removals")
    op.drop_table("evidence_removals")
    op.drop_index("ix_evidence_seq", table_name="evidence")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("seq")
    op.drop_table("evidence_sequences")
