"""The durable inbox: a delivery written once is processed exactly once, whatever fails."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot.clock import FixedClock
from bot.context import Services
from bot.core import Bot
from bot.inbox import InboxWorker
from bot.metrics import Metrics
from bot.types import ConversationRef, IncomingMessage, UserRef
from store import inbox as inbox_store
from store.db import ALL_TENANTS, Database
from store.inbox import LeaseLost
from store.models.core import PersonSkill
from store.models.inbox import InboxEvent
from tests.served import reap

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def kill_work(db: Database):  # type: ignore[no-untyped-def]
    """A table outside the models where the tests' processors record their work (dropped after,
    so the PostgreSQL pass's schema check sees only the models' tables)."""
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS kill_work (inbox_id INTEGER, payload TEXT)"))
    yield
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS kill_work"))


def _state(db: Database, dedupe_key: str) -> InboxEvent:
    with db.session(ALL_TENANTS) as s:
        row = s.scalar(select(InboxEvent).where(InboxEvent.dedupe_key == dedupe_key))
        assert row is not None
        s.expunge(row)
        return row


def test_a_retried_delivery_is_written_once(db: Database, clock: FixedClock) -> None:
    assert inbox_store.put(db, "slack", "Ev1", "event", "{}", clock.now()) is True
    assert inbox_store.put(db, "slack", "Ev1", "event", "{}", clock.now()) is False
    assert inbox_store.put(db, "teams", "Ev1", "activity", "{}", clock.now()) is True  # ids are per platform
    assert inbox_store.stats(db, clock.now()).pending == 2


def test_a_claimed_row_is_leased_then_comes_back_when_its_worker_dies(db: Database, clock: FixedClock) -> None:
    inbox_store.put(db, "slack", "Ev1", "event", "{}", clock.now())
    first = inbox_store.claim(db, "a", 10, clock.now())
    assert [r.attempts for r in first] == [1]
    assert inbox_store.claim(db, "b", 10, clock.now()) == []  # leased
    clock.advance(inbox_store.LEASE + timedelta(seconds=1))  # worker a was killed
    second = inbox_store.claim(db, "b", 10, clock.now())
    assert [r.attempts for r in second] == [2]
    with pytest.raises(LeaseLost), db.session(ALL_TENANTS) as s:  # a comes back too late
        inbox_store.mark_done(s, first[0], clock.now())
    with db.session(ALL_TENANTS) as s:
        inbox_store.mark_done(s, second[0], clock.now())
    assert _state(db, "Ev1").state == "done"


def test_work_and_done_commit_together(db: Database, clock: FixedClock, kill_work: None) -> None:
    """A failure after the work but before the commit leaves neither the work nor 'done'."""
    inbox_store.put(db, "test", "k1", "event", "p", clock.now())
    calls = {"n": 0}

    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        with db.session(ALL_TENANTS) as s:
            s.execute(text("INSERT INTO kill_work (inbox_id, payload) VALUES (:i, 'p')"), {"i": row.id})
            finish(s)
            if calls["n"] == 1:
                raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    worker = InboxWorker(db, clock, {"test": work})
    assert worker.run_once() == 1
    row = _state(db, "k1")
    assert (row.state, row.attempts) == ("pending", 1)
    assert "server closed" in row.last_error
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kill_work")).scalar() == 0
    assert worker.run_once() == 0  # backing off
    clock.advance(timedelta(seconds=2))
    assert worker.run_once() == 1
    assert _state(db, "k1").state == "done"
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kill_work")).scalar() == 1


def test_a_delivery_that_always_fails_is_set_aside_and_counted(db: Database, clock: FixedClock,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    inbox_store.put(db, "test", "bad", "event", "p", clock.now())
    inbox_store.put(db, "test", "good", "event", "p", clock.now())
    metrics = Metrics()

    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        if row.id == first_id:
            raise ValueError("cannot parse this payload")

    first_id = _state(db, "bad").id
    worker = InboxWorker(db, clock, {"test": work}, metrics=metrics)
    with caplog.at_level(logging.ERROR, logger="store.inbox"):
        for _ in range(inbox_store.MAX_ATTEMPTS + 2):
            worker.run_once()
            clock.advance(timedelta(seconds=inbox_store.BACKOFF_CAP * 1.3))
    assert _state(db, "bad").state == "poison"
    assert _state(db, "good").state == "done"
    assert inbox_store.stats(db, clock.now()).poison == 1
    assert any("set aside" in r.getMessage() for r in caplog.records)
    exposition = metrics.exposition().decode()
    assert 'causette_inbox_poisoned_total{platform="test"} 1.0' in exposition
    assert 'causette_inbox_retries_total{platform="test"} 7.0' in exposition
    assert inbox_store.retry_poison(db, clock.now()) == 1
    assert inbox_store.stats(db, clock.now()).pending == 1


def test_one_conversation_runs_in_arrival_order(db: Database, clock: FixedClock) -> None:
    for n in range(3):
        inbox_store.put(db, "slack", f"e{n}", "event", str(n), clock.now(), order_key="C1")
    inbox_store.put(db, "slack", "other", "event", "x", clock.now(), order_key="C2")
    first = inbox_store.claim(db, "a", 1, clock.now())
    assert [r.payload for r in first] == ["0"]
    # While C1's first row is leased, a second worker may take C2's but none of C1's later rows.
    assert [r.payload for r in inbox_store.claim(db, "b", 10, clock.now())] == ["x"]


def test_bot_marks_the_row_done_in_the_commands_transaction(services: Services, bot: Bot, clock: FixedClock) -> None:
    db = services.db
    inbox_store.put(db, "console", "line-1", "message", "skills add kubernetes", clock.now())
    replies: list[str] = []

    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        user = UserRef("console", "acme", "U1", "Alice")
        msg = IncomingMessage(id=row.payload[:10], text=row.payload, sender=user,
                              conversation=ConversationRef("console", "acme", "D1", "dm"), addressed=True, sent_at=clock.now())
        replies.extend(e.reply.key for e in bot.handle(msg, in_transaction=finish))  # type: ignore[union-attr]

    worker = InboxWorker(db, clock, {"console": work})
    assert worker.drain(5)
    assert _state(db, "line-1").state == "done"
    assert len(replies) == 1 and replies[0] != "error.internal"
    with db.session("acme") as s:
        assert s.scalar(select(func.count(PersonSkill.id))) == 1


def test_a_handler_bug_is_answered_once_and_not_retried(services: Services, bot: Bot, clock: FixedClock) -> None:
    db = services.db
    inbox_store.put(db, "console", "line-2", "message", "skills add kubernetes", clock.now())
    import dataclasses

    aliases = bot.registry._aliases  # noqa: SLF001 - this test's own registry, with a handler made to fail
    for i, (tokens, alias, spec) in enumerate(aliases):
        if spec.name == "skills add":
            aliases[i] = (tokens, alias, dataclasses.replace(spec, handler=lambda *a: 1 / 0))
    keys: list[str] = []

    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        user = UserRef("console", "acme", "U1", "Alice")
        msg = IncomingMessage(id="2", text=row.payload, sender=user,
                              conversation=ConversationRef("console", "acme", "D1", "dm"), addressed=True, sent_at=clock.now())
        keys.extend(e.reply.key for e in bot.handle(msg, in_transaction=finish))  # type: ignore[union-attr]

    worker = InboxWorker(db, clock, {"console": work})
    assert worker.drain(5)
    assert keys == ["error.internal"]
    assert _state(db, "line-2").state == "done"


def test_killed_worker_loses_nothing_and_repeats_nothing(db_url: str, db: Database, clock: FixedClock,
                                                        kill_work: None) -> None:
    """kill -9 a worker process in the middle of a burst; a new one drains the rest; every
    delivery's work exists exactly once."""
    from bot.clock import SystemClock

    now = SystemClock().now()
    for n in range(60):
        inbox_store.put(db, "test", f"ev{n}", "event", f"p{n}", now, order_key=f"C{n % 7}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.inbox_worker_proc", db_url, "0.05"]
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.engine.connect() as conn:
                done = conn.execute(text("SELECT count(*) FROM kill_work")).scalar()
            if done and done >= 15:
                break
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        reap(first)
    assert inbox_store.stats(db, SystemClock().now()).pending > 0, "the first worker finished before it was killed"
    # The second worker comes up after the first one's leases expired (a restart).
    clock.set(SystemClock().now() + inbox_store.LEASE + timedelta(seconds=1))
    worker = InboxWorker(db, clock, {"test": _rewrite_work(db)})
    assert worker.drain(30)
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT inbox_id, count(*) FROM kill_work GROUP BY inbox_id")).all()
    assert len(rows) == 60
    assert all(count == 1 for _id, count in rows)
    assert inbox_store.stats(db, clock.now()).pending == 0


def _rewrite_work(db: Database):  # type: ignore[no-untyped-def]
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        with db.session(ALL_TENANTS) as s:
            s.execute(text("INSERT INTO kill_work (inbox_id, payload) VALUES (:i, :p)"), {"i": row.id, "p": row.payload})
            finish(s)
    return work


def test_a_delivery_that_kills_every_worker_is_set_aside(db: Database, clock: FixedClock,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    inbox_store.put(db, "slack", "deadly", "event", "{}", clock.now())
    for _ in range(inbox_store.MAX_ATTEMPTS):
        assert len(inbox_store.claim(db, "w", 5, clock.now())) == 1
        clock.advance(inbox_store.LEASE + timedelta(seconds=1))  # the worker died with it
    with caplog.at_level(logging.ERROR, logger="store.inbox"):
        assert inbox_store.claim(db, "w", 5, clock.now()) == []
    assert _state(db, "deadly").state == "poison"
    assert any("never finished" in r.getMessage() for r in caplog.records)


def test_concurrent_claims_never_take_two_rows_of_one_conversation(db: Database, clock: FixedClock) -> None:
    """Many workers claiming at once: while a row of a conversation is leased, no other
    worker holds a later row of the same conversation."""
    import threading

    for n in range(40):
        inbox_store.put(db, "slack", f"c{n}", "event", str(n), clock.now(), order_key=f"C{n % 4}")
    held: list[list[str]] = []
    barrier = threading.Barrier(8)

    def claimer(name: str) -> None:
        barrier.wait(5)
        held.append([r.order_key for r in inbox_store.claim(db, name, 3, clock.now())])

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    keys = [k for batch in held for k in set(batch)]
    assert len(keys) == len(set(keys)), held  # no conversation in two workers' hands


def test_an_idle_server_polls_once_per_interval_and_still_finds_another_process_delivery(
        db: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle threads sleep: one poll per interval for the whole process, by a read that claims
    nothing; a delivery no wake announces (written by another process) is still taken then."""
    claims: list[int] = []
    peeks: list[bool] = []
    real_claim, real_has_due = inbox_store.claim, inbox_store.has_due

    def counted_claim(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = real_claim(*args, **kwargs)
        claims.append(len(rows))
        return rows

    def counted_peek(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real_has_due(*args, **kwargs)
        peeks.append(found)
        return found

    monkeypatch.setattr(inbox_store, "claim", counted_claim)
    monkeypatch.setattr(inbox_store, "has_due", counted_peek)
    done: list[str] = []
    worker = InboxWorker(db, clock, {"test": lambda row, _finish: done.append(row.payload)}, threads=4,
                         poll_seconds=0.2)
    worker.start()
    try:
        time.sleep(1.1)
        assert claims == [0, 0, 0, 0]  # each thread looked once on start, then only the polls
        assert 3 <= len(peeks) <= 7 and not any(peeks)  # about 5 in 1.1 s, not 4 threads × 5
        inbox_store.put(db, "test", "elsewhere", "event", "p-elsewhere", clock.now())  # no wake
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done == ["p-elsewhere"]
        assert True in peeks
    finally:
        worker.stop()


def test_a_wake_sets_off_one_idle_thread_and_a_full_claim_wakes_another(db: Database, clock: FixedClock,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery costs one claim, not one per thread (their racing claims queued on SQLite's
    write turn); a burst is still worked by several threads."""
    claims: list[int] = []
    real_claim = inbox_store.claim

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = real_claim(*args, **kwargs)
        claims.append(len(rows))
        return rows

    monkeypatch.setattr(inbox_store, "claim", counted)
    done: list[str] = []
    worker = InboxWorker(db, clock, {"test": lambda row, _finish: done.append(row.payload)}, threads=4, batch=2,
                         poll_seconds=30)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(claims) < 4 and time.monotonic() < deadline:  # each thread looked once on start
            time.sleep(0.01)
        assert claims == [0, 0, 0, 0]
        inbox_store.put(db, "test", "one", "event", "p-one", clock.now())
        worker.wake()
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        assert done == ["p-one"]
        assert claims[4:] == [1, 0]  # one thread: its row, then a look that finds nothing

        for n in range(6):
            inbox_store.put(db, "test", f"burst{n}", "event", f"p{n}", clock.now(), order_key=f"C{n}")
        worker.wake()
        while len(done) < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(done[1:]) == [f"p{n}" for n in range(6)]  # long before the 30 s poll
    finally:
        worker.stop()
