"""SQLite, the embedded default, under ordinary concurrency: many commands at once, a lock held
by another process, readers beside a writer, nested units of work and savepoints (store/db.py)."""
from __future__ import annotations

import logging
import select
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import pytest
from sqlalchemy import func, select as sql_select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.core import Bot
from bot.types import ConversationRef, IncomingMessage, Outbound, UserRef
from store.db import ALL_TENANTS, Database, NestedWriteError, ReadOnlyError
from store.models.core import Person, PersonSkill, Skill
from tests.test_expertise import PLATFORM, TENANT, make_person

WRITERS = 50
HOLD_S = 4.0


@pytest.fixture(autouse=True)
def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's locking model; PostgreSQL writers do not take a whole-file lock")


@pytest.fixture
def quick_db(db_url: str) -> Iterator[Database]:
    """A second handle on the test database whose busy timeout is short: a deadlock fails fast."""
    db = Database(db_url, busy_timeout_s=1.0)
    yield db
    db.dispose()


def _path(db_url: str) -> str:
    return db_url[len("sqlite:///"):]


def _command(bot: Bot, user: str, text_: str) -> list[Outbound]:
    conv = ConversationRef(PLATFORM, TENANT, "general", "public", name="general")
    msg = IncomingMessage(id=f"m-{user}-{text_}", text=text_, sender=UserRef(PLATFORM, TENANT, user, user.title()),
                          conversation=conv, addressed=True, sent_at=bot.services.clock.now())
    return [e for e in bot.handle(msg) if isinstance(e, Outbound)]


def _concurrently(bot: Bot, users: list[str]) -> list[list[Outbound]]:
    """Each user says `skills add <user>-skill` from their own thread, all released at once.
    They are known already (as they would be after a day of use): the first write of their
    command's transaction then comes after a savepoint and some reads, which is what SQLite's
    deferred transactions could not upgrade when another writer got in first."""
    for user in users:
        _command(bot, user, "help")
    start = threading.Barrier(len(users), timeout=30)

    def one(user: str) -> list[Outbound]:
        start.wait()
        return _command(bot, user, f"skills add {user}-skill")

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        futures = [pool.submit(one, user) for user in users]
        return [f.result(timeout=180) for f in futures]


def _skills(db: Database) -> dict[str, set[str]]:
    with db.session(TENANT, readonly=True) as s:
        rows = s.execute(sql_select(Person.external_id, Skill.name)
                         .join(PersonSkill, PersonSkill.person_id == Person.id).join(Skill, Skill.id == PersonSkill.skill_id))
        found: dict[str, set[str]] = {}
        for who, skill in rows:
            found.setdefault(who, set()).add(skill.lower())
        return found


def _names(db: Database) -> set[str]:
    with db.session(TENANT, readonly=True) as s:
        return set(s.scalars(sql_select(Person.external_id)))


def _add(session: Session, handle: str) -> None:
    session.add(Person(external_id=handle, handle=handle, display_name=handle.title()))
    session.flush()


@contextmanager
def _held_by_another_process(db_url: str, seconds: float) -> Iterator[None]:
    """Another process holds the file's write lock (BEGIN IMMEDIATE) for `seconds`."""
    code = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "c.execute('COMMIT')\n")
    proc = subprocess.Popen([sys.executable, "-c", code, _path(db_url), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and proc.stdout.readline().strip() == "locked"
        yield
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


def test_fifty_concurrent_commands_are_all_answered_and_stored(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    users = [f"writer{n:02d}" for n in range(WRITERS)]
    answers = _concurrently(bot, users)
    assert [[o.reply.key for o in out] for out in answers] == [["skills.added"]] * WRITERS
    stored = _skills(bot.services.db)
    assert {u: stored.get(u) for u in users} == {u: {f"{u}-skill"} for u in users}
    assert "database is locked" not in caplog.text and "event failed" not in caplog.text


def test_a_lock_held_by_another_process_delays_commands_but_loses_none(bot: Bot, db_url: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    make_person(bot, "ana")
    users = [f"late{n}" for n in range(5)]
    with _held_by_another_process(db_url, HOLD_S):
        started = time.monotonic()
        with bot.services.db.session(TENANT, readonly=True) as s:  # reading needs no lock
            assert s.scalar(sql_select(Person.display_name).where(Person.external_id == "ana")) == "Ana"
        assert time.monotonic() - started < 1.0
        answers = _concurrently(bot, users)
        waited = time.monotonic() - started
    assert waited > HOLD_S - 1.0  # they really waited for the other process
    assert [[o.reply.key for o in out] for out in answers] == [["skills.added"]] * len(users)
    stored = _skills(bot.services.db)
    assert all(stored.get(u) == {f"{u}-skill"} for u in users)
    assert "database is locked" not in caplog.text


def test_a_reader_does_not_wait_for_a_writer_of_this_process(bot: Bot) -> None:
    make_person(bot, "ana")
    db = bot.services.db
    holding, failures = threading.Event(), []

    def writer() -> None:
        try:
            with db.session(TENANT) as s:
                ana = s.scalar(sql_select(Person).where(Person.external_id == "ana"))
                assert ana is not None
                ana.display_name = "Renamed"
                s.flush()
                holding.set()
                time.sleep(3)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
            holding.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        started = time.monotonic()
        with db.session(TENANT, readonly=True) as s:
            seen = s.scalar(sql_select(Person.display_name).where(Person.external_id == "ana"))
        assert time.monotonic() - started < 1.0
        assert seen == "Ana"  # the snapshot before the writer's uncommitted change
        assert thread.is_alive()
    finally:
        thread.join(timeout=30)
    assert not failures
    with db.session(TENANT, readonly=True) as s:
        assert s.scalar(sql_select(Person.display_name).where(Person.external_id == "ana")) == "Renamed"


def test_a_unit_of_work_nested_in_one_that_only_read_commits_on_its_own(quick_db: Database, db_url: str) -> None:
    other = Database(db_url)
    try:
        started = time.monotonic()
        with quick_db.session(ALL_TENANTS) as outer:  # a job's session: reads the work to do
            assert outer.scalar(sql_select(func.count()).select_from(Person)) == 0
            with quick_db.session(TENANT) as inner:
                _add(inner, "first")
            assert _names(other) == {"first"}  # committed, visible to everyone, before the outer ends
            with quick_db.session(TENANT) as inner:
                _add(inner, "second")
            assert outer.scalar(sql_select(func.count()).select_from(Person)) == 2
            outer.add(Person(tenant=TENANT, external_id="outer", handle="outer"))
        assert time.monotonic() - started < 5.0
        assert _names(other) == {"first", "second", "outer"}
    finally:
        other.dispose()


def test_a_unit_of_work_nested_in_one_that_wrote_joins_it(quick_db: Database, db_url: str) -> None:
    other = Database(db_url)
    try:
        with pytest.raises(RuntimeError, match="outer fails"):
            with quick_db.session(TENANT) as outer:
                _add(outer, "outer")
                with quick_db.session(TENANT) as inner:
                    _add(inner, "joined")
                with pytest.raises(ValueError):
                    with quick_db.session(TENANT) as inner:
                        _add(inner, "undone")
                        raise ValueError("inner fails")
                assert {p for p in outer.scalars(sql_select(Person.external_id))} == {"outer", "joined"}
                assert _names(other) == set()  # nothing is durable before the outer commits
                raise RuntimeError("outer fails")
        assert _names(other) == set()
        with quick_db.session(TENANT) as outer:
            _add(outer, "outer")
            with quick_db.session(TENANT) as inner:
                _add(inner, "joined")
        assert _names(other) == {"outer", "joined"}
    finally:
        other.dispose()


def test_a_raw_write_transaction_nested_in_one_that_wrote_fails_at_once(quick_db: Database) -> None:
    started = time.monotonic()
    with pytest.raises(NestedWriteError):
        with quick_db.session(TENANT) as outer:
            _add(outer, "outer")
            quick_db.analyze()  # its own connection: would wait for this thread's own lock
    assert time.monotonic() - started < 1.0
    with quick_db.session(TENANT) as s:  # and the turn was given back
        _add(s, "after")


def test_a_released_savepoint_is_rolled_back_with_its_transaction(quick_db: Database) -> None:
    with pytest.raises(RuntimeError):
        with quick_db.session(TENANT) as s:
            savepoint = s.begin_nested()  # the first statement of the transaction
            _add(s, "in-savepoint")
            savepoint.commit()
            raise RuntimeError("the unit of work fails after its savepoint was released")
    with quick_db.session(TENANT) as s:
        _add(s, "kept")
        savepoint = s.begin_nested()
        _add(s, "rolled-back")
        savepoint.rollback()
    assert _names(quick_db) == {"kept"}


def test_run_waits_out_a_lock_longer_than_the_busy_timeout(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(db_url, busy_timeout_s=0.5)
    try:
        with _held_by_another_process(db_url, 2.0):
            started = time.monotonic()
            db.run(TENANT, lambda session: _add(session, "patient"))
            assert time.monotonic() - started > 1.0
        assert "database busy" in caplog.text
        assert _names(db) == {"patient"}
    finally:
        db.dispose()


def test_run_repeats_the_whole_unit_of_work_and_only_on_a_lock(quick_db: Database) -> None:
    calls: list[str] = []

    def work(session: Session) -> str:
        calls.append("work")
        _add(session, f"try{len(calls)}")
        if len(calls) == 1:
            raise OperationalError("INSERT", None, sqlite3.OperationalError("database is locked"))
        return "done"

    assert quick_db.run(TENANT, work) == "done"
    assert calls == ["work", "work"] and _names(quick_db) == {"try2"}  # the failed try left nothing

    def broken(session: Session) -> None:
        calls.append("broken")
        raise ValueError("not a lock")

    with pytest.raises(ValueError):
        quick_db.run(TENANT, broken)
    assert calls.count("broken") == 1


def test_a_read_only_session_refuses_writes(quick_db: Database) -> None:
    with pytest.raises(ReadOnlyError):
        with quick_db.session(TENANT, readonly=True) as s:
            _add(s, "sneaky")
    with pytest.raises(ReadOnlyError):
        with quick_db.session(TENANT, readonly=True) as s:
            s.execute(text("SELECT 1"))
            s.execute(Person.__table__.delete())
    assert _names(quick_db) == set()
