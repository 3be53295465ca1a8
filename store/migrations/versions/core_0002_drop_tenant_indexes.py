"""core: merge the feature branches, drop the single-column tenant indexes, index evidence by person

Every tenant-scoped query also filters on a more selective column, and the composite
unique constraints already start with the tenant. Without statistics, SQLite's planner
preferred the low-selectivity `ix_<table>_tenant` index and scanned a whole workspace
(for example all evidence rows for one person's profile). New tables no longer get it.

Revision ID: core_0002
Revises: digests_0002, slack_0001, 0102_social_follows, teams_0001
Create Date: 2026-11-23 05:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = ("digests_0002", "slack_0001", "0102_social_follows", "teams_0001")
branch_labels = None
depends_on = "contribution_0001"


def _tenant_indexes() -> list[tuple[str, str]]:
    inspector = sa.inspect(op.get_bind())
    found = []
    for table in inspector.get_table_names():
        for index in inspector.get_indexes(table):
            if index["name"] == f"ix_{table}_tenant" and index["column_names"] == ["tenant"]:
                found.append((table, index["name"]))
    return found


def upgrade() -> None:
    for table, name in _tenant_indexes():
        op.drop_index(name, table_name=table)
    op.create_index("ix_evidence_person", "evidence", ["tenant", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_person", table_name="evidence")
    inspector = sa.inspect(op.get_bind())
    for table in inspector.get_table_names():
        if "tenant" in {c["name"] for c in inspector.get_columns(table)}:
            op.create_index(f"ix_{table}_tenant", table, ["tenant"])
