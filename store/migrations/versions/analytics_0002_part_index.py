"""analytics: each roll-up row's `part` (2 contributed, 1 only reacted) and a covering index
(day, conversation, person, part) for organisation reports; reactions indexed by conversation
and day for a channel's live part

Revision ID: analytics_0002
Revises: analytics_0001
Create Date: 2026-12-01 02:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0002"
down_revision = "analytics_0001"
branch_labels = None
depends_on = None

CONTRIBUTING = ("posts", "replies", "ideas", "help_asked", "help_answered", "kudos_given")
REACTING = ("reactions", "votes")


def upgrade() -> None:
    with op.batch_alter_table("analytics_activity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.SmallInteger(), nullable=False, server_default="0"))
    # rows rolled up before: their part from their counts (store.models.analytics.part_of)
    op.execute(f"UPDATE analytics_activity SET part = CASE WHEN {' + '.join(CONTRIBUTING)} > 0 THEN 2 "
               f"WHEN {' + '.join(REACTING)} > 0 THEN 1 ELSE 0 END")
    op.create_index("ix_analytics_activity_day_part", "analytics_activity",
                    ["tenant", "day", "conversation_id", "person_id", "part"])
    op.create_index("ix_message_reactions_conv_day", "message_reactions", ["tenant", "conversation_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_message_reactions_conv_day", table_name="message_reactions")
    op.drop_index("ix_analytics_activity_day_part", table_name="analytics_activity")
    with op.batch_alter_table("analytics_activity", schema=None) as batch_op:
        batch_op.drop_column("part")
