"""contribution: one thank-you per recipient a day (the giver's local day), kept by a unique key

Revision ID: contribution_0003
Revises: contribution_0002
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "contribution_0003"
down_revision = "contribution_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows given before the rule keep a NULL day: never equal, so never in conflict.
    with op.batch_alter_table("kudos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("day", sa.Date(), nullable=True))
        batch_op.create_unique_constraint("uq_kudos_one_a_day", ["tenant", "giver_id", "recipient_id", "day"])


def downgrade() -> None:
    with op.batch_alter_table("kudos", schema=None) as batch_op:
        batch_op.drop_constraint("uq_kudos_one_a_day", type_="unique")
        batch_op.drop_column("day")
