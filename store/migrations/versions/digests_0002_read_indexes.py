"""digests: indexes for per-channel, per-period reads (members, ideas, help requests, kudos)

Revision ID: digests_0002
Revises: digests_0001
Create Date: 2026-11-23 04:05:00
"""
from __future__ import annotations

from alembic import op

revision = "digests_0002"
down_revision = "digests_0001"
branch_labels = None
depends_on = "contribution_0001"


def upgrade() -> None:
    op.create_index("ix_digest_read_members", "conversation_members", ["conversation_id", "joined_at"])
    op.create_index("ix_digest_read_ideas", "ideas", ["tenant", "conversation_id", "created_at"])
    op.create_index("ix_digest_read_help", "help_requests", ["tenant", "conversation_id", "created_at"])
    op.create_index("ix_digest_read_kudos", "kudos", ["tenant", "conversation_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_digest_read_kudos", "kudos")
    op.drop_index("ix_digest_read_help", "help_requests")
    op.drop_index("ix_digest_read_ideas", "ideas")
    op.drop_index("ix_digest_read_members", "conversation_members")
