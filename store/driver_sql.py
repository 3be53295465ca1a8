"""Tiny reads on the expertise lookup's hot path, run at the driver level.

SQLAlchemy's Core execution costs about 60 µs a statement on top of the driver; the
reads below take about 15 µs in the driver itself, and a lookup makes them every time.
Plain SQL on our own tables, written with `?` placeholders (translated for drivers with
another style), every value bound as a parameter.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from sqlalchemy.orm import Session


def fetch(session: Session, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of `sql` run on the session's connection (inside its transaction)."""
    connection = session.connection()
    return connection.exec_driver_sql(_native(sql, connection.dialect.paramstyle), tuple(params)).fetchall()


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


@lru_cache(maxsize=256)
def _native(sql: str, paramstyle: str) -> str:
    return sql if paramstyle == "qmark" else sql.replace("?", "%s")
