"""taxonomy: labels of imported concepts (aliases grouped by concept, `taxonomy import`)

Revision ID: taxonomy_0001
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "taxonomy_0001"
down_revision = "0001_core"
branch_labels = ("taxonomy",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "taxonomy_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concept", sa.String(length=300), nullable=False),
        sa.Column("lang", sa.String(length=10), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("preferred", sa.Boolean(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxonomy_labels")),
        sa.UniqueConstraint("tenant", "concept", "key", name=op.f("uq_taxonomy_labels_tenant_concept_key")),
    )
    op.create_index("ix_taxonomy_labels_key", "taxonomy_labels", ["tenant", "key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_taxonomy_labels_key", table_name="taxonomy_labels")
    op.drop_table("taxonomy_labels")
