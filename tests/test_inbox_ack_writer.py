"""The acknowledgement's inbox write on SQLite (store.inbox.AckWriter, Pipeline.put_now): the
same row as `store.inbox.put`, deduplicated, never waiting for the write turn (WouldWait, and
nothing written), only in the thread that made it."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.core import Bot
from store import inbox as inbox_store
from store.db import ALL_TENANTS, Database, WouldWait
from store.models.inbox import InboxEvent


def _rows(db: Database) -> list[InboxEvent]:
    with db.session(ALL_TENANTS, readonly=True) as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_the_ack_writer_writes_puts_row_and_deduplicates(bot: Bot) -> None:
    db = bot.services.db
    if db.dialect != "sqlite":
        with pytest.raises(ValueError):
            inbox_store.AckWriter(db)
        return
    writer = inbox_store.AckWriter(db)
    now = bot.services.clock.now()
    try:
        assert writer.put("slack", "event:Ev1", "event", '{"body": {}}', now, tenant="T1", order_key="T1:C1") is True
        assert writer.put("slack", "event:Ev1", "event", '{"body": {}}', now, tenant="T1", order_key="T1:C1") is False
        assert inbox_store.put(db, "slack", "event:Ev2", "event", '{"body": {}}', now, tenant="T1", order_key="T1:C1")
        mine, puts = _rows(db)
        columns = [c.key for c in InboxEvent.__table__.columns if c.key not in ("id", "dedupe_key")]
        assert [getattr(mine, c) for c in columns] == [getattr(puts, c) for c in columns]
        assert mine.received_at == now and mine.state == "pending"
        claimed = inbox_store.claim(db, "w", 10, now)
        assert [c.id for c in claimed] == [mine.id, puts.id]
        with pytest.raises(inbox_store.WrongThread):
            failure: list[BaseException] = []
            thread = threading.Thread(target=lambda: _catch(failure, writer.put, "slack", "event:Ev3", "event", "{}", now))
            thread.start()
            thread.join()
            raise failure[0]
    finally:
        writer.close()


def _catch(into: list[BaseException], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
        into.append(exc)


def test_the_ack_writer_never_waits_for_the_write_turn(bot: Bot) -> None:
    db = bot.services.db
    if db.dialect != "sqlite":
        pytest.skip("the event loop writes only on SQLite; PostgreSQL's write goes to a thread")
    writer = inbox_store.AckWriter(db)
    now = bot.services.clock.now()
    holding, done = threading.Event(), threading.Event()

    def hold_the_turn() -> None:
        with db.session(ALL_TENANTS) as session:
            session.execute(text("UPDATE inbox_events SET attempts = attempts WHERE 0"))
            holding.set()
            done.wait(10)

    worker = threading.Thread(target=hold_the_turn)
    worker.start()
    try:
        holding.wait(10)
        with db.priority(wait=False), pytest.raises(WouldWait):
            writer.put("slack", "command:1", "command", "{}", now)
    finally:
        done.set()
        worker.join()
    try:
        with db.priority(wait=False):
            assert writer.put("slack", "command:1", "command", "{}", now) is True, "nothing was written the first time"
        assert [r.dedupe_key for r in _rows(db)] == ["command:1"]
    finally:
        writer.close()
