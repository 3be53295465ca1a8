"""Per-session memos of rows read on the inbox's hot path.

An inbox batch (bot/unit.py) is one session over many messages: a row every message of a
conversation reads (a topic, whether a help channel is on) is read once per batch. A memo
holds rows read, never rows the session wrote (a writer forgets its key), and the session
forgets every memo on any rollback, a savepoint's included: a row read after this session
wrote it could be rolled back with it. A batch lasts well under a second, so another
process's change is seen by the next batch at the latest.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
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
