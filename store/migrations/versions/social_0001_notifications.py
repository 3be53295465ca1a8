"""social: notification queue and budgets

Revision ID: 0101_social_notify
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "0101_social_notify"
down_revision = "0001_core"
branch_labels = ("social",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("thread_key", sa.String(length=300), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("claim_token", sa.String(length=40), nullable=True),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_notifications_person_id_people"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("person_id", "thread_key", name=op.f("uq_notifications_person_id_thread_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_person_sent", ["person_id", "status", "sent_at"], unique=False)
        batch_op.create_index("ix_notifications_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_tenant"), ["tenant"], unique=False)

    op.create_table(
        "notify_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("quiet_hours", sa.String(length=20), nullable=True),
        sa.Column("snooze_until", store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_notify_settings_person_id_people"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_settings")),
        sa.UniqueConstraint("person_id", name=op.f("uq_notify_settings_person_id")),
    )
    with op.batch_alter_table("notify_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_settings_tenant"), ["tenant"], unique=False)


def downgrade() -> None:
    op.drop_table("notify_settings")
    op.drop_table("notifications")
