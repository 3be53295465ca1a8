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
them for whoever measures.
"""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

executed = 0  # statements run here since the process started (benchmarks' statement counts)


def first_row(session: Session, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row `sql` returns (None: none), run in the session's transaction."""
    global executed
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        executed += 1
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]
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
