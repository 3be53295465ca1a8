"""digests: schedules, claimed periods, deliveries

Revision ID: digests_0001
Revises: 0001_core
Create Date: 2026-11-23 03:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "digests_0001"
down_revision = "0001_core"
branch_labels = ("digests",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.String(length=10), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("next_run_at", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], name=op.f("fk_digests_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_digests_person_id_people"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
    )
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digests_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_digests_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_digests_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_digests_due", ["status", "next_run_at"], unique=False)

    op.create_table(
        "digest_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("period_key", sa.String(length=40), nullable=False),
        sa.Column("scheduled_for", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_start", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["digest_id"], ["digests.id"], name=op.f("fk_digest_runs_digest_id_digests"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_runs")),
        sa.UniqueConstraint("digest_id", "period_key", name=op.f("uq_digest_runs_digest_id_period_key")),
    )
    with op.batch_alter_table("digest_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digest_runs_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_digest_runs_digest_id"), ["digest_id"], unique=False)

    op.create_table(
        "digest_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("target_key", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["digest_runs.id"], name=op.f("fk_digest_deliveries_run_id_digest_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_deliveries")),
        sa.UniqueConstraint("run_id", "target_key", name=op.f("uq_digest_deliveries_run_id_target_key")),
    )
    with op.batch_alter_table("digest_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digest_deliveries_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_digest_deliveries_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_digest_deliveries_status", ["status", "lease_until"], unique=False)


def downgrade() -> None:
    op.drop_table("digest_deliveries")
    op.drop_table("digest_runs")
    op.drop_table("digests")
