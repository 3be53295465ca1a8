"""Alembic environment: runs on the connection Database.upgrade() passes in,
or on CAUSETTE_DATABASE_URL / DATABASE_URL when Alembic's CLI is used directly."""
from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("DATABASE_URL") or os.environ.get("CAUSETTE_DATABASE_URL") or "sqlite:///causette.db"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    with create_engine(url).begin() as conn:
        _run(conn)
