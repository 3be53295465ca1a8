"""The one or two statements every ambient message runs on PostgreSQL, straight on the
driver's cursor.

Through SQLAlchemy (Core or `exec_driver_sql`) a statement costs about 300 µs of CPU on top
of the driver's 100 µs on this path, most of it building a result from the cursor's
description (one object per column, forty columns for an event's rows). Here the statement
runs on the session's own connection, in its transaction (savepoints included), and the
row comes back as the driver's tuple; a driver error is raised as SQLAlchemy would raise it
(`OperationalError` for a lost connection or a deadlock, which the inbox retries; a lost
connection is invalidated). SQL in the driver's style (psycopg: `%(name)s`); values as the
driver takes them, no type processing either way (the caller converts what needs it).
Connection events (`before_cursor_execute`) do not see these statements: `executed` counts
them for whoever measures, and writes held back (store/memo.py `defer`) are written first
when the statement names their tables.
"""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from store import memo

executed = 0  # statements run here since the process started (benchmarks' statement counts)


def first_row(session: Session, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row `sql` returns (None: none), run in the session's transaction."""
    return _run(session, sql, params, all_=False)  # type: ignore[return-value]


def _run(session: Session, sql: str, params: Mapping[str, Any], *, all_: bool) -> Any:
    global executed
    connection = session.connection()
    if memo.held(connection, sql):  # writes held back that this statement could see (store/memo.py)
        memo.flush_held(connection)
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        executed += 1
        cursor.execute(sql, params)
        return cursor.fetchall() if all_ else cursor.fetchone()
    except connection.dialect.loaded_dbapi.Error as exc:
        lost = connection.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(sql, dict(params), exc, connection.dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost, dialect=connection.dialect) from exc
    finally:
        try:
            cursor.close()
        except connection.dialect.loaded_dbapi.Error:  # a connection lost with it: already said
            pass


def all_rows(session: Session, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Every row `sql` returns, run in the session's transaction (as `first_row`)."""
    return _run(session, sql, params, all_=True)  # type: ignore[return-value]
