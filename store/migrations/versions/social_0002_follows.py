"""social: follows, indexing opt-outs, topic timeline columns

Revision ID: 0102_social_follows
Revises: 0101_social_notify
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "0102_social_follows"
down_revision = "0101_social_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("target_key", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["follower_id"], ["people.id"], name=op.f("fk_follows_follower_id_people"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_follows_person_id_people"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"], name=op.f("fk_follows_topic_id_topics"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follows")),
        sa.UniqueConstraint("follower_id", "target_key", name=op.f("uq_follows_follower_id_target_key")),
    )
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follows_follower_id"), ["follower_id"], unique=False)
        batch_op.create_index("ix_follows_person", ["tenant", "person_id"], unique=False)
        batch_op.create_index("ix_follows_topic", ["tenant", "topic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_follows_tenant"), ["tenant"], unique=False)

    op.create_table(
        "index_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_index_opt_outs_person_id_people"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_opt_outs")),
        sa.UniqueConstraint("person_id", name=op.f("uq_index_opt_outs_person_id")),
    )
    with op.batch_alter_table("index_opt_outs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_index_opt_outs_tenant"), ["tenant"], unique=False)

    op.add_column("message_topics", sa.Column("sent_at", store.models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column("message_topics", sa.Column("conversation_id", sa.Integer(), nullable=True))
    op.create_index("ix_message_topics_topic_time", "message_topics", ["tenant", "topic_id", "sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_message_topics_topic_time", table_name="message_topics")
    with op.batch_alter_table("message_topics", schema=None) as batch_op:
        batch_op.drop_column("conversation_id")
        batch_op.drop_column("sent_at")
    op.drop_table("index_opt_outs")
    op.drop_table("follows")
