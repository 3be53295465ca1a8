"""Per-session memos of rows read on the inbox's hot path.

An inbox batch (bot/unit.py) is one session over many messages: a row every message of a
conversation reads (a topic, whether a help channel is on) is read once per batch. A memo
holds rows read, never rows the session wrote (a writer forgets its key), and the session
forgets every memo on any rollback, a savepoint's included: a row read after this session
wrote it could be rolled back with it. A batch lasts well under a second, so another
process's change is seen by the next batch at the latest.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

_MEMOS = "memos"  # session.info: {name: dict}


def memo(session: Session, name: str) -> dict[Any, Any]:
    """The session's memo called `name` (created empty)."""
    memos = session.info.get(_MEMOS)
    if memos is None:
        memos = session.info[_MEMOS] = {}
        event.listen(session, "after_soft_rollback", _forget)
    return memos.setdefault(name, {})


def _forget(session: Session, _previous: Any) -> None:
    memos = session.info.get(_MEMOS)
    if memos is not None:
        memos.clear()


# Deferred writes ----------------------------------------------------------------
# A hot-path writer may hold its rows back and write those of many events in one statement
# (an inbox batch's messages: store.social.ingest_later). What it holds is "written" as far
# as its transaction is concerned, so it is written before anything could see it missing:
# before any statement that names one of the tables it writes (`touches`, matched in the
# statement's text, lower case) and any DELETE (a cascade could reach them), before a
# savepoint begins (so what a savepoint's rollback drops is only what was held inside it),
# before the commit, and when the caller says so (`flush_deferred`, which the inbox worker
# calls before marking its batch done). A rollback drops what is held, as it would have
# dropped the rows. Held on the connection (its transaction is the rows'), so statements run
# outside the session (store/cursor_sql.py) are seen too.
_HELD = "memo_deferred_writes"  # Connection.info: {name: (touches, flush)}
_HOOKED = "memo_deferred_hooked"  # session.info: its before_commit writes what is held
_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()  # engines whose events write what is held
_LISTENING = threading.Lock()


def defer(session: Session, name: str, touches: tuple[str, ...], flush: Callable[[], None]) -> None:
    """Hold a write: `flush()` writes what `name` holds (it takes its rows first: a flush
    runs once). Registering the same name again while held keeps the first registration."""
    connection = session.connection()
    if not session.info.get(_HOOKED):  # ahead of other before_commit listeners (evidence_log numbers the writes)
        session.info[_HOOKED] = True
        event.listen(session, "before_commit", flush_deferred, insert=True)
    engine = connection.engine
    with _LISTENING:
        if engine in _ENGINES:
            engine = None
        else:
            _ENGINES.add(engine)
    if engine is not None:
        event.listen(engine, "before_cursor_execute", _before_statement)
        event.listen(engine, "savepoint", lambda conn, _name: flush_held(conn))
        event.listen(engine, "commit", flush_held)
        event.listen(engine, "rollback", _drop)
        event.listen(engine, "rollback_savepoint", lambda conn, _name, _context: _drop(conn))
    connection.info.setdefault(_HELD, {}).setdefault(name, (touches, flush))


def flush_deferred(session: Session) -> None:
    """Write whatever the session's transaction holds back (nothing: no statement)."""
    if session.in_transaction():
        flush_held(session.connection())


def held(connection: Any, statement: str) -> bool:
    """Whether `statement` must wait until what `connection` holds is written (a statement run
    around SQLAlchemy, store/cursor_sql.py, asks before it runs)."""
    waiting = connection.info.get(_HELD)
    if not waiting:
        return False
    text_ = statement.lower()
    return "delete" in text_ or any(word in text_ for touches, _ in waiting.values() for word in touches)


def flush_held(connection: Any) -> None:
    waiting = connection.info.pop(_HELD, None)
    while waiting:  # a flush may hold more (it should not): written too
        for _touches, flush in waiting.values():
            flush()
        waiting = connection.info.pop(_HELD, None)


def _before_statement(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if held(connection, statement):
        flush_held(connection)


def _drop(connection: Any) -> None:
    connection.info.pop(_HELD, None)
