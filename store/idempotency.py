"""Idempotency keys in the database, so several worker processes deduplicate together."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import literal_column
from sqlalchemy.orm import Session

from store.models.base import utcnow
from store.models.core import ProcessedEvent


def insert_ignore(session: Session, model: type, values: dict[str, object]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL. True when a row was inserted."""
    statement = _insert_ignore(session.get_bind().dialect.name, model)
    return session.execute(statement, values).first() is not None


@lru_cache(maxsize=64)
def _insert_ignore(dialect: str, model: type):  # noqa: ANN202 - a cached SQLAlchemy Insert
    """Built once per table (every event claims its id with it; building it cost three times
    running it). The values come as execution parameters."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = model.__table__  # type: ignore[attr-defined]
    # RETURNING rather than rowcount: with psycopg 3 and SQLAlchemy 2.1 rowcount is -1 here
    # (truthy) whether or not the row went in, which made every claim "succeed" on PostgreSQL.
    return insert(table).on_conflict_do_nothing().returning(literal_column("1"))


def claim(session: Session, tenant: str, key: str) -> bool:
    """True the first time `key` is claimed in `tenant`, False for every later attempt."""
    return insert_ignore(session, ProcessedEvent, {"tenant": tenant, "key": key[:300], "created_at": utcnow()})
