"""The migrations build exactly the schema the models describe, and upgrading twice is harmless."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import Database
from store.models import Base


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert differences == []


def test_no_low_selectivity_tenant_index(db_url: str) -> None:
    db = Database(db_url)
    inspector = inspect(db.engine)
    tenant_only = [(t, ix["name"]) for t in inspector.get_table_names() for ix in inspector.get_indexes(t)
                   if ix["column_names"] == ["tenant"]]
    db.dispose()
    assert tenant_only == []
