"""analytics: reactions by person, daily activity roll-ups, first contributions, rolled-up
days, analytics settings; roles gain a scope (department | site | language + value)

Revision ID: analytics_0001
Revises: 0001_core
Create Date: 2026-11-30 21:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "analytics_0001"
down_revision = "0001_core"
branch_labels = ("analytics",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_reactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_external_id", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_message_reactions_person_id_people"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_reactions")),
        sa.UniqueConstraint("tenant", "conversation_id", "message_external_id", "person_id",
                            name=op.f("uq_message_reactions_tenant_conversation_id_message_external_id_person_id")),
    )
    op.create_index("ix_message_reactions_day", "message_reactions", ["tenant", "day"])
    op.create_index(op.f("ix_message_reactions_person_id"), "message_reactions", ["person_id"])
    op.create_table(
        "analytics_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        *[sa.Column(k, sa.Integer(), nullable=False) for k in
          ("posts", "replies", "reactions", "ideas", "votes", "help_asked", "help_answered", "kudos_given")],
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_activity")),
        sa.UniqueConstraint("tenant", "day", "conversation_id", "person_id",
                            name=op.f("uq_analytics_activity_tenant_day_conversation_id_person_id")),
    )
    op.create_index("ix_analytics_activity_conv_day", "analytics_activity", ["tenant", "conversation_id", "day"])
    op.create_index("ix_analytics_activity_person_day", "analytics_activity", ["tenant", "person_id", "day"])
    op.create_table(
        "analytics_first",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_first")),
        sa.UniqueConstraint("tenant", "person_id", "conversation_id",
                            name=op.f("uq_analytics_first_tenant_person_id_conversation_id")),
    )
    op.create_index("ix_analytics_first_conv_day", "analytics_first", ["tenant", "conversation_id", "day"])
    op.create_table(
        "analytics_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("rolled_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_rollups")),
        sa.UniqueConstraint("tenant", "day", name=op.f("uq_analytics_rollups_tenant_day")),
    )
    op.create_table(
        "analytics_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_settings")),
        sa.UniqueConstraint("tenant", "name", name=op.f("uq_analytics_settings_tenant_name")),
    )
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope_kind", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("scope_value", sa.String(length=200), nullable=False, server_default=""))
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.alter_column("scope_value", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_column("scope_value")
        batch_op.drop_column("scope_kind")
    op.drop_table("analytics_settings")
    op.drop_table("analytics_rollups")
    op.drop_index("ix_analytics_first_conv_day", table_name="analytics_first")
    op.drop_table("analytics_first")
    op.drop_index("ix_analytics_activity_person_day", table_name="analytics_activity")
    op.drop_index("ix_analytics_activity_conv_day", table_name="analytics_activity")
    op.drop_table("analytics_activity")
    op.drop_index(op.f("ix_message_reactions_person_id"), table_name="message_reactions")
    op.drop_index("ix_message_reactions_day", table_name="message_reactions")
    op.drop_table("message_reactions")
