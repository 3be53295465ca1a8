"""The acknowledgement's inbox write on SQLite (store/db.py `Database.priority`): it takes the
next write turn ahead of the workers' transactions waiting for one, and when it must not wait
(written in the event loop) it raises WouldWait at once, having written nothing."""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timezone
from typing import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from store import inbox as inbox_store
from store.db import ALL_TENANTS, Database, WouldWait
from store.models.inbox import InboxEvent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write turn; PostgreSQL writers do not take a whole-file lock")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, busy_timeout_s=10.0)
    yield database
    database.dispose()


def _put(db: Database, key: str) -> bool:
    return inbox_store.put(db, "slack", key, "command", "{}", NOW)


def _rows(db: Database) -> int:
    with db.session(ALL_TENANTS, readonly=True) as s:
        return int(s.scalar(select(func.count(InboxEvent.id))) or 0)


def _wait_for_waiters(db: Database, normal: int, first: int) -> None:
    gate = db._gate  # noqa: SLF001 - the test watches the queue form before letting it go
    assert gate is not None
    deadline = time.monotonic() + 5
    while (len(gate._queue), len(gate._first)) != (normal, first):  # noqa: SLF001
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.005)


def test_an_inbox_write_goes_before_the_transactions_waiting(db: Database) -> None:
    order: list[str] = []
    holding = threading.Event()
    let_go = threading.Event()

    def worker_transaction() -> None:
        with db.session(ALL_TENANTS) as s:
            s.execute(text("SELECT 1"))
            holding.set()
            let_go.wait(5)
            order.append("holder")

    def waiting_worker(name: str) -> None:
        with db.session(ALL_TENANTS) as s:
            s.execute(text("SELECT 1"))
            order.append(name)

    def ack() -> None:
        with db.priority():
            _put(db, "ack")
        order.append("ack")

    holder = threading.Thread(target=worker_transaction)
    holder.start()
    assert holding.wait(5)
    workers = [threading.Thread(target=waiting_worker, args=(f"worker{n}",)) for n in range(2)]
    for n, thread in enumerate(workers):
        thread.start()
        _wait_for_waiters(db, n + 1, 0)
    acker = threading.Thread(target=ack)
    acker.start()
    _wait_for_waiters(db, 2, 1)
    let_go.set()
    for thread in (holder, *workers, acker):
        thread.join(10)
    assert order == ["holder", "ack", "worker0", "worker1"]
    assert _rows(db) == 1


def test_a_write_that_must_not_wait_raises_while_this_process_writes(db: Database) -> None:
    holding = threading.Event()
    let_go = threading.Event()

    def worker_transaction() -> None:
        with db.session(ALL_TENANTS) as s:
            s.execute(text("SELECT 1"))
            holding.set()
            let_go.wait(5)

    holder = threading.Thread(target=worker_transaction)
    holder.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        with pytest.raises(WouldWait), db.priority(wait=False):
            _put(db, "now")
        assert time.monotonic() - started < 0.5
    finally:
        let_go.set()
        holder.join(10)
    assert _rows(db) == 0
    with db.priority(wait=False):  # the turn is free again: written at once
        assert _put(db, "now")
    assert _rows(db) == 1


def test_a_write_that_must_not_wait_raises_while_another_process_writes(db: Database, db_url: str) -> None:
    other = sqlite3.connect(str(make_url(db_url).database), isolation_level=None, timeout=10)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(WouldWait), db.priority(wait=False):
            _put(db, "locked")
        assert time.monotonic() - started < 0.5, "it waited for SQLite's busy timeout"
        # A write that may wait still waits (the busy timeout came back), and is written.
        writer = threading.Thread(target=_put, args=(db, "patient"))
        writer.start()
        time.sleep(0.3)
        assert writer.is_alive()
    finally:
        other.execute("COMMIT")
        other.close()
    writer.join(10)
    assert _rows(db) == 1
