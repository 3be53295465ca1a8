"""The durable inbox's queries: write a delivery before its acknowledgement, claim due rows
with a lease, mark a row done inside the transaction that did its work, back off and set
aside rows that keep failing.

Exactly one effect per delivery rests on three things: the unique `(platform, dedupe_key)`
(a retry or replay writes nothing new), the lease (a killed worker's rows come back when it
expires), and `mark_done` running in the work's own transaction and checking the lease is
still this worker's (a worker that outlived its lease rolls its work back instead of
committing it twice).
"""
from __future__ import annotations

import logging
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Sequence

from sqlalchemy import and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from store.db import ALL_TENANTS, Database
from store.idempotency import insert_ignore
from store.models.inbox import InboxEvent
from store.transient import Abandon

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=15)  # renewed while the worker lives (InboxWorker's heartbeat)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
_ASYNC_COMMIT = "inbox_async_commit"  # session.info: the transaction that set synchronous_commit off
CLAIM_LOCK = 7_274_301
CANDIDATES = 4  # a claim looks at this many times its limit of due rows, to take whole conversations  # PostgreSQL advisory lock key taken by each claim's transaction


class LeaseLost(Abandon):
    """The row is no longer this worker's (its lease expired and another worker took it, or
    it is done): the work done for it must be rolled back."""


@dataclass(frozen=True)
class Claimed:
    """A row handed to a worker, with the token that proves the lease is still its own."""

    id: int
    platform: str
    kind: str
    tenant: str
    order_key: str
    payload: str
    attempts: int
    token: str
    received_at: datetime


@dataclass(frozen=True)
class InboxStats:
    pending: int
    poison: int
    oldest_pending_seconds: float


def put(db: Database, platform: str, dedupe_key: str, kind: str, payload: str, now: datetime, *,
        tenant: str = "", order_key: str = "") -> bool:
    """Write one delivery (a short transaction of its own). False when the same delivery was
    already written: the caller acknowledges it again and does nothing more."""
    with db.session(ALL_TENANTS) as session:
        return put_in(session, platform, dedupe_key, kind, payload, now, tenant=tenant, order_key=order_key)


def put_in(session: Session, platform: str, dedupe_key: str, kind: str, payload: str, now: datetime, *,
           tenant: str = "", order_key: str = "") -> bool:
    """`put` inside the caller's transaction (durable when it commits: the Matrix sync loop
    writes a sync's events and the token after them in one commit). False for a duplicate."""
    values = {
        "platform": platform, "dedupe_key": dedupe_key[:300], "kind": kind[:40], "tenant": tenant[:120],
        "order_key": order_key[:300], "payload": payload, "state": "pending", "attempts": 0,
        "received_at": now, "next_attempt_at": now, "locked_by": "", "locked_until": None, "last_error": "",
        "done_at": None,
    }
    return insert_ignore(session, InboxEvent, values)


_PUT_COLUMNS = ("platform", "dedupe_key", "kind", "tenant", "order_key", "payload", "state", "attempts", "received_at",
                "next_attempt_at", "locked_by", "locked_until", "last_error", "done_at")


class AckWriter:
    """`put` for the acknowledgement, on SQLite, in the one thread that owns it (the event
    loop's; another thread gets WrongThread and uses `put`): the same row, written through a
    connection kept for it and an INSERT rendered once. A session per write (ORM session,
    pooled connection checked out and reset, statement compiled from the cache) cost 0.36 ms
    of the event loop's time for 0.03 ms of SQLite work; this costs about 0.07 ms.

    The transaction is the same as `put`'s: `begin()` takes the file's write turn as any write
    unit of work does (`Database.priority` applies: with `wait=False`, WouldWait and nothing
    written) and BEGIN IMMEDIATE; the row is durable when `put` returns (committed; WAL
    with synchronous=NORMAL survives the process being killed, store/db.py). This connection
    never runs a WAL checkpoint (`wal_autocheckpoint=0`): the workers' commits, which follow
    every acknowledged row, do, so an acknowledgement never waits for one."""

    def __init__(self, db: Database) -> None:
        if db.dialect != "sqlite":
            raise ValueError("AckWriter is for SQLite (PostgreSQL's write goes to a thread: `put`)")
        self.db = db
        self.owner = threading.get_ident()
        self._conn: Any = None
        self._sql = (f"INSERT INTO {InboxEvent.__tablename__} ({', '.join(_PUT_COLUMNS)}) "
                     f"VALUES ({', '.join('?' for _ in _PUT_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING 1")
        when = InboxEvent.__table__.c.received_at.type
        dialect = db.engine.dialect
        self._when = when.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)

    def put(self, platform: str, dedupe_key: str, kind: str, payload: str, now: datetime, *,
            tenant: str = "", order_key: str = "") -> bool:
        """`put`, in the owning thread. False for a duplicate delivery."""
        if threading.get_ident() != self.owner:
            raise WrongThread("an AckWriter is used by the thread that made it")
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self.db.writer()
            conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")  # not a transaction
        stamp = self._when(now)
        values = (platform, dedupe_key[:300], kind[:40], tenant[:120], order_key[:300], payload, "pending", 0, stamp,
                  stamp, "", None, "", None)
        with conn.begin():
            return conn.connection.driver_connection.execute(self._sql, values).fetchone() is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class WrongThread(RuntimeError):
    """An AckWriter used outside the thread that made it."""


def _busy(session: Session, now: datetime) -> list[str]:
    """Conversations with a delivery leased right now (few: the rows in flight)."""
    return list(session.scalars(
        select(InboxEvent.order_key).where(
            InboxEvent.state == "pending", InboxEvent.locked_until.is_not(None), InboxEvent.locked_until >= now,
            InboxEvent.order_key != "",
        ).distinct()
    ))


def _due(now: datetime, platforms: Sequence[str] | None = None, busy: Sequence[str] = ()):  # noqa: ANN202 - a SQLAlchemy clause
    """Pending, due, not leased, and not of a conversation (`busy`, from `_busy`) one of whose
    deliveries is leased now, so one conversation's deliveries never run side by side (a
    message before its edit); of `platforms` only when given (a console sharing a server's
    database leaves its rows). The busy conversations are read first, apart: a correlated
    "no earlier row leased" test per candidate cost a scan of the conversation's backlog for
    every pending row, quadratic in the backlog."""
    clause = and_(
        InboxEvent.state == "pending", InboxEvent.next_attempt_at <= now,
        or_(InboxEvent.locked_until.is_(None), InboxEvent.locked_until < now),
    )
    if busy:
        clause = and_(clause, InboxEvent.order_key.not_in(list(busy)))
    return clause if platforms is None else and_(clause, InboxEvent.platform.in_(list(platforms)))


@cache
def _due_peek(platforms: tuple[str, ...] | None) -> Any:
    return select(InboxEvent.id).where(_due(bindparam("now"), platforms)).limit(1)


def has_due(db: Database, now: datetime, platforms: Sequence[str] | None = None) -> bool:
    """Whether any delivery is due and not leased (a conversation busy elsewhere is not
    excluded: a superset of what `claim` takes). An idle worker's poll: one indexed read on a
    pooled connection, without the ORM session and the busy-conversation read of `claim`
    (a quarter of its cost; idle pollers held Python's lock 17 ms per second, which a
    request's acknowledgement then waited for)."""
    with db.engine.connect() as conn:
        return conn.execute(_due_peek(None if platforms is None else tuple(platforms)), {"now": now}).first() is not None


def claim(db: Database, worker: str, limit: int, now: datetime, lease: timedelta = LEASE, *,
          platforms: Sequence[str] | None = None, look_first: bool = True) -> list[Claimed]:
    """Lease up to `limit` due rows, oldest first, whole conversations at a time (see
    `_by_conversation`). Rows whose earlier attempts all died with their worker (kill -9
    mid-work) are set aside once they reach MAX_ATTEMPTS. An idle inbox costs one indexed read.
    `look_first=False` (a worker woken because a delivery was just written): no read-only look
    before the write on SQLite, whose answer is known (about 1.5 ms of a 5 ms claim)."""
    token = f"{worker[:40]}:{uuid.uuid4().hex[:16]}"
    if db.dialect == "sqlite" and look_first:  # a writing session waits for the file's write turn: look first
        with db.session(ALL_TENANTS, readonly=True) as session:
            if session.execute(select(InboxEvent.id).where(_due(now, platforms, _busy(session, now)))
                               .limit(1)).first() is None:
                return []
    with db.session(ALL_TENANTS) as session:
        postgresql = session.get_bind().dialect.name == "postgresql"
        if postgresql:
            # Claims take turns (a few milliseconds each): a claim must see the leases the
            # previous one committed, or two workers could take rows of one conversation
            # at once. SQLite's single writer gives the same order for free.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
        # No row lock on the candidates (FOR UPDATE would write each of them, four times the
        # rows taken): claims take turns, and the UPDATE below takes only rows still due when
        # it runs (READ COMMITTED re-checks a row another transaction just changed: one a
        # batch marked done, or a failure backed off, is left alone).
        due = (select(InboxEvent.id, InboxEvent.attempts, InboxEvent.order_key)
               .where(_due(now, platforms, _busy(session, now)))
               .order_by(InboxEvent.id).limit(limit * CANDIDATES))
        found = session.execute(due).all()
        if not found:
            return []
        crashed = [r.id for r in found if r.attempts >= MAX_ATTEMPTS]
        if crashed:
            _set_aside_crashed(session, crashed, now)
        chosen = _by_conversation([r for r in found if r.attempts < MAX_ATTEMPTS], limit)
        if not chosen:
            return []
        rows = session.execute(
            update(InboxEvent).where(InboxEvent.id.in_(chosen), _due(now))
            .values(locked_by=token, locked_until=now + lease, attempts=InboxEvent.attempts + 1)
            .returning(InboxEvent.id, InboxEvent.platform, InboxEvent.kind, InboxEvent.tenant, InboxEvent.order_key,
                       InboxEvent.payload, InboxEvent.attempts, InboxEvent.received_at)
            .execution_options(synchronize_session=False)
        ).all()
    claimed = [Claimed(r.id, r.platform, r.kind, r.tenant, r.order_key, r.payload, r.attempts, token, r.received_at)
               for r in rows]
    return sorted(claimed, key=lambda c: c.id)


def _by_conversation(rows: Sequence[Any], limit: int) -> list[int]:
    """Up to `limit` of `rows` (due, oldest first), a conversation's rows together, the
    conversations in the order of their oldest row. One row of each of many conversations
    would keep all of them from every other worker until this batch ends (a conversation's
    rows run one at a time); a few whole conversations leave the rest to the other workers."""
    groups: dict[str, list[int]] = {}
    for row in rows:
        groups.setdefault(row.order_key or f"#{row.id}", []).append(row.id)
    chosen: list[int] = []
    for ids in groups.values():
        if len(chosen) >= limit:
            break
        chosen += ids[: limit - len(chosen)]
    return chosen


def _set_aside_crashed(session: Session, ids: list[int], now: datetime) -> None:
    """Rows that reached MAX_ATTEMPTS without any attempt finishing: every worker that took
    them died (a delivery that crashes the process, e.g. by exhausting its memory)."""
    rows = session.execute(
        update(InboxEvent).where(InboxEvent.id.in_(ids), _due(now))
        .values(state="poison", locked_until=None, last_error="the worker died on every attempt")
        .returning(InboxEvent.id, InboxEvent.platform, InboxEvent.dedupe_key)
        .execution_options(synchronize_session=False)
    ).all()
    for row in rows:
        log.error("inbox: %s delivery %s set aside after %d attempts that never finished (row %d)",
                  row.platform, row.dedupe_key, MAX_ATTEMPTS, row.id)


def renew(db: Database, rows: list[Claimed], now: datetime, lease: timedelta = LEASE) -> None:
    """Extend the leases of rows this worker still holds (claimed, not finished): a live
    worker keeps its rows however long they take; a dead one loses them within one lease.
    One statement. On PostgreSQL a row locked by the batch marking it done is skipped (it
    needs no lease any more, and waiting for it could deadlock with that batch)."""
    if not rows:
        return
    held = (select(InboxEvent.id).where(InboxEvent.id.in_([row.id for row in rows]), InboxEvent.state == "pending",
                                        InboxEvent.locked_by.in_(sorted({row.token for row in rows}))))
    with db.session(ALL_TENANTS) as session:
        if session.get_bind().dialect.name == "postgresql":
            held = held.with_for_update(skip_locked=True)
        session.execute(
            update(InboxEvent).where(InboxEvent.id.in_(held.scalar_subquery()))
            .values(locked_until=now + lease).execution_options(synchronize_session=False)
        )


def relax_commit(session: Session) -> None:
    """PostgreSQL: this transaction's commit need not wait for the disk (see `mark_done`). Once
    per transaction; a batch sets it before its first savepoint, whose rollback would undo it."""
    if session.get_bind().dialect.name != "postgresql":
        return
    transaction = session.get_transaction()
    if transaction is None or session.info.get(_ASYNC_COMMIT) is not transaction:
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        session.info[_ASYNC_COMMIT] = session.get_transaction()


def mark_done(session: Session, row: Claimed, now: datetime) -> None:
    """Inside the work's own transaction: the row is done when, and only when, the work commits.
    Raises LeaseLost (so the work rolls back) when the row is no longer this worker's.

    On PostgreSQL that commit need not wait for the disk: the delivery is already durable in
    the inbox, and "done" is in the same transaction as the work, so a server crash that
    loses the commit loses both and the row is simply processed again."""
    relax_commit(session)
    done = session.execute(_done_statement(), {"row_id": row.id, "token": row.token, "now": now}).first()
    if done is None:
        raise LeaseLost(f"inbox row {row.id} is no longer leased by this worker")


@cache
def _done_statement() -> Any:
    """Built once: every row of every batch runs it."""
    table = InboxEvent.__table__
    return (
        update(table).where(table.c.id == bindparam("row_id"), table.c.state == "pending",
                            table.c.locked_by == bindparam("token"))
        .values(state="done", done_at=bindparam("now"), locked_until=None).returning(table.c.id)
    )


def mark_all_done(session: Session, rows: Sequence[Claimed], now: datetime) -> None:
    """`mark_done` for the rows of an inbox batch at once, just before its commit (so `done_at`
    is that commit's time): one statement per claim instead of one per row. Raises LeaseLost,
    marking nothing the caller may keep (it rolls the batch back), when any row is no longer
    this worker's."""
    relax_commit(session)
    by_token: dict[str, list[int]] = {}
    for row in rows:
        by_token.setdefault(row.token, []).append(row.id)
    table = InboxEvent.__table__
    for token, ids in by_token.items():
        marked = session.execute(
            update(table).where(table.c.id.in_(ids), table.c.state == "pending", table.c.locked_by == token)
            .values(state="done", done_at=now, locked_until=None).returning(table.c.id)
        ).all()
        if len(marked) != len(ids):
            raise LeaseLost(f"inbox rows {sorted(set(ids) - {r[0] for r in marked})} are no longer leased by this worker")


def stamp_done(session: Session, rows: Sequence[Claimed], now: datetime) -> None:
    """Just before a batch's commit: its done rows' `done_at` is that commit's time, not the
    time each row's work ended (what "done" means to a reader is "committed")."""
    session.execute(
        update(InboxEvent).where(InboxEvent.id.in_([row.id for row in rows]), InboxEvent.state == "done")
        .values(done_at=now).execution_options(synchronize_session=False)
    )


def backoff_seconds(attempts: int) -> float:
    """1 s, 2 s, 4 s… capped at five minutes, with ±20 % jitter so retries of a burst spread out."""
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


def fail(db: Database, row: Claimed, error: str, now: datetime) -> str:
    """After a failed attempt: back off, or set the row aside at MAX_ATTEMPTS. Returns the new state."""
    poison = row.attempts >= MAX_ATTEMPTS
    values = {"locked_until": None, "last_error": error[:500]}
    if poison:
        values["state"] = "poison"
    else:
        values["next_attempt_at"] = now + timedelta(seconds=backoff_seconds(row.attempts))
    with db.session(ALL_TENANTS) as session:
        session.execute(
            update(InboxEvent).where(InboxEvent.id == row.id, InboxEvent.state == "pending", InboxEvent.locked_by == row.token)
            .values(**values).execution_options(synchronize_session=False)
        )
    if poison:
        log.error("inbox: %s %s row %d set aside after %d attempts: %s", row.platform, row.kind, row.id, row.attempts,
                  error[:200])
        return "poison"
    return "pending"


def release(db: Database, row: Claimed) -> None:
    """Give a claimed row back untouched (shutdown before it started): not counted as an attempt."""
    with db.session(ALL_TENANTS) as session:
        session.execute(
            update(InboxEvent).where(InboxEvent.id == row.id, InboxEvent.state == "pending", InboxEvent.locked_by == row.token)
            .values(locked_until=None, attempts=InboxEvent.attempts - 1).execution_options(synchronize_session=False)
        )


def stats(db: Database, now: datetime) -> InboxStats:
    with db.session(ALL_TENANTS, readonly=True) as session:
        pending, oldest = session.execute(
            select(func.count(InboxEvent.id), func.min(InboxEvent.received_at)).where(InboxEvent.state == "pending")
        ).one()
        poison = session.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state == "poison")) or 0
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return InboxStats(int(pending or 0), int(poison), age)


def purge_done(db: Database, before: datetime, limit: int = 5000) -> int:
    """Forget done rows older than `before` (their dedupe keys with them: a platform retries
    within minutes, never days). Poison rows stay until an operator looks at them."""
    with db.session(ALL_TENANTS) as session:
        old = select(InboxEvent.id).where(InboxEvent.state == "done", InboxEvent.done_at < before).limit(limit)
        result = session.execute(delete(InboxEvent).where(InboxEvent.id.in_(old)).execution_options(synchronize_session=False))
        return int(result.rowcount or 0)


def retry_poison(db: Database, now: datetime) -> int:
    """An operator's second chance: every set-aside row becomes due again with fresh attempts."""
    with db.session(ALL_TENANTS) as session:
        rows = session.execute(
            update(InboxEvent).where(InboxEvent.state == "poison")
            .values(state="pending", attempts=0, next_attempt_at=now, locked_until=None)
            .returning(InboxEvent.id).execution_options(synchronize_session=False)
        ).all()
    return len(rows)

