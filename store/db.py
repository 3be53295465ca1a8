"""Engine, sessions and the tenant guard.

Every session is opened for one tenant (`Database.session(tenant)`). A listener adds
`tenant = :tenant` to every ORM query on a TenantScoped model and stamps new rows,
so no query can cross workspaces by accident. Jobs that sweep all workspaces open
`Database.session(ALL_TENANTS)` explicitly.

On SQLite (one writer at a time per file) a write session starts with `BEGIN IMMEDIATE`
after taking this process's write gate for that file; read-only sessions start a deferred
`BEGIN` and never wait for a writer. Same-thread nesting is handled (see `_WriteGate`).
docs/ARCHITECTURE.md, "SQLite concurrency", has the whole model.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from contextlib import contextmanager
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption

from store.models import Base, TenantScoped

log = logging.getLogger(__name__)
ALL_TENANTS = "*"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class TenantError(RuntimeError):
    pass


def _scope_queries(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    tenant = state.session.info.get("tenant")
    if tenant is None:
        raise TenantError("query on a session opened without a tenant")
    if tenant == ALL_TENANTS:
        return
    state.statement = state.statement.options(_tenant_criteria(tenant))


@lru_cache(maxsize=4096)
def _tenant_criteria(tenant: str) -> LoaderCriteriaOption:
    """The guard's option for one tenant, built once: building it (the lambda's closure analysis)
    was about 40% of the guard's cost on every query. Options are immutable, so one object serves
    every session and thread; the tenant still reaches the SQL as a bound parameter."""
    return with_loader_criteria(TenantScoped, lambda cls: cls.tenant == tenant, include_aliases=True)


def _stamp_tenant(session: Session, flush_context: object, instances: object) -> None:
    tenant = session.info.get("tenant")
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            if obj.tenant is None:
                if tenant in (None, ALL_TENANTS):
                    raise TenantError(f"new {type(obj).__name__} without a tenant")
                obj.tenant = tenant
            elif tenant not in (None, ALL_TENANTS) and obj.tenant != tenant:
                raise TenantError(f"{type(obj).__name__} of tenant {obj.tenant!r} written in {tenant!r}")


BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for its turn (this process's other writer, or another process
holding the file's write lock) before "database is locked". Long on purpose: waiting is the
normal case under load, and the answer to a command must not be lost for a lock held a few seconds."""

_BEGIN = "sqlite_begin"  # execution option: "IMMEDIATE" for write units of work, else a deferred BEGIN
_OWNER = "causette_sqlite_gate_owner"  # conn.info: the thread whose gate turn this transaction holds
_SUSPENDED = "causette_sqlite_suspended"  # conn.info: read-only so far, ended for a nested writer
_CHANGES = "causette_sqlite_changes"  # conn.info: the connection's total_changes when BEGIN ran
_DDL = "causette_sqlite_ddl"  # conn.info: the transaction ran DDL (total_changes does not count it)
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

T = TypeVar("T")


class NestedWriteError(RuntimeError):
    """A second write transaction on the same SQLite file, in the thread whose first one has
    already written: SQLite would make it wait for a lock its own thread holds, until the busy
    timeout. Open the inner unit of work with `Database.session`, which joins the outer one."""


class ReadOnlyError(RuntimeError):
    """A write attempted in a session opened with readonly=True."""


class WouldWait(RuntimeError):
    """A write asked not to wait (`Database.priority(wait=False)`) found the SQLite file's write
    turn taken, by a writer of this process or by another process: nothing was written."""


class _Priority(threading.local):
    """This thread's way of taking write turns (`Database.priority`)."""

    first = False  # ahead of every writer waiting without priority
    wait = True  # False: WouldWait rather than wait for a turn in use


_PRIORITY = _Priority()


class _PriorityScope:
    """`Database.priority`'s block (a plain object: it is entered once per acknowledgement)."""

    __slots__ = ("wait", "saved")

    def __init__(self, wait: bool) -> None:
        self.wait = wait
        self.saved = (False, True)

    def __enter__(self) -> None:
        self.saved = (_PRIORITY.first, _PRIORITY.wait)
        _PRIORITY.first, _PRIORITY.wait = True, self.wait

    def __exit__(self, *_exc: object) -> None:
        _PRIORITY.first, _PRIORITY.wait = self.saved


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` says "busy, try again later": SQLite's SQLITE_BUSY / SQLITE_LOCKED ("database
    is locked"), PostgreSQL's serialization failure or deadlock."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        return "locked" in str(orig) or "busy" in str(orig)
    return getattr(orig, "sqlstate", None) in ("40001", "40P01")


def _locked(detail: str) -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(f"database is locked ({detail})"))


class _WriteGate:
    """This process's turn to write one SQLite file, first come first served (writers with
    priority, `Database.priority`, first among themselves and before everyone else).

    SQLite lets one transaction write a file at a time. Its busy handler polls (sleeping up to
    100 ms, in no order), so with many writers some starve past any timeout; waiting here instead
    hands the turn to one writer per commit, in arrival order, and leaves SQLite's busy timeout
    to other processes. The turn is reentrant for its owning thread. `local.active` is the
    connection whose write transaction this thread has open on the file. Priority is for the
    acknowledgements' inbox writes: one short INSERT each, which must not queue behind every
    worker transaction waiting (it still waits for the one holding the turn).

    Same-thread nesting (an outer unit of work open while an inner one starts, e.g. a job's
    session around per-tenant sessions): if the outer transaction has written nothing yet, it is
    suspended (its read-only transaction ends, freeing the file) and begins again, IMMEDIATE, at
    its next statement; if it has written, `Database.session` joins it through a SAVEPOINT.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._queue: deque[int] = deque()
        self._first: deque[int] = deque()  # tickets of writers with priority
        self._tickets = count()
        self.local = threading.local()

    def acquire(self, timeout: float, *, first: bool = False) -> bool:
        """Wait up to `timeout` for the turn (0: take it only if nobody holds it or waits)."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if timeout <= 0 and (self._owner is not None or self._first or (self._queue and not first)):
                return False
            ticket = next(self._tickets)
            line = self._first if first else self._queue
            line.append(ticket)
            deadline = time.monotonic() + timeout
            while self._owner is not None or (self._first or line)[0] != ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    line.remove(ticket)
                    self._cond.notify_all()
                    return False
                self._cond.wait(left)
            line.popleft()
            self._owner, self._depth = me, 1
            return True

    def priority_waiting(self) -> bool:
        """A writer with priority waits for the turn (a long transaction may end early for it)."""
        return bool(self._first)

    def release(self, owner: int) -> None:
        with self._cond:
            if self._owner != owner:
                log.warning("sqlite write gate released by a thread that does not hold it")
                return
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    @property
    def active(self) -> Connection | None:
        return getattr(self.local, "active", None)

    @active.setter
    def active(self, conn: Connection | None) -> None:
        self.local.active = conn


_GATES: "weakref.WeakValueDictionary[str, _WriteGate]" = weakref.WeakValueDictionary()
_GATES_LOCK = threading.Lock()


def _gate_for(engine: Engine) -> _WriteGate:
    """One gate per database file in this process, whichever engine opened it."""
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        key = os.path.realpath(database)
    else:
        key = f"engine:{id(engine)}"
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = _WriteGate()
        return gate


def _dbapi(conn: Connection) -> sqlite3.Connection:
    return conn.connection.dbapi_connection  # type: ignore[return-value]


def _open_writer(gate: _WriteGate) -> Connection | None:
    """This thread's connection with a write transaction open on the gate's file, if any."""
    conn = gate.active
    if conn is not None and (conn.closed or conn.invalidated or _OWNER not in conn.info):
        gate.active = conn = None  # ended without an event (a connection lost or collected)
    return conn


def _can_suspend(conn: Connection) -> bool:
    """The transaction has written nothing (rows or schema) and has no open savepoint."""
    info = conn.info
    return (not conn.in_nested_transaction() and not info.get(_DDL)
            and _dbapi(conn).total_changes == info.get(_CHANGES))


def _suspend(gate: _WriteGate, conn: Connection) -> None:
    _dbapi(conn).commit()  # nothing written: ending it loses nothing and frees the file
    conn.info[_SUSPENDED] = True
    gate.active = None
    owner = conn.info.pop(_OWNER, None)
    if owner is not None:
        gate.release(owner)


def _begin_immediate(gate: _WriteGate, conn: Connection, timeout: float, emit: Callable[[], object]) -> None:
    active = _open_writer(gate)
    if active is not None and active is not conn:
        if not _can_suspend(active):
            raise NestedWriteError("a write transaction on this SQLite file is open in this thread and has written")
        _suspend(gate, active)
    if not gate.acquire(timeout if _PRIORITY.wait else 0, first=_PRIORITY.first):
        if not _PRIORITY.wait:
            raise WouldWait("this process's write turn is in use")
        raise _locked(f"waited {timeout:g} s for this process's other writer")
    try:
        emit()
    except BaseException:
        gate.release(threading.get_ident())
        raise
    conn.info[_OWNER] = threading.get_ident()
    conn.info[_CHANGES] = _dbapi(conn).total_changes
    gate.active = conn


def _begin_now(dbapi_connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    """BEGIN IMMEDIATE without SQLite's busy wait: WouldWait when another process writes."""
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise WouldWait("another process holds the file's write lock") from None
        raise
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")


def _end(gate: _WriteGate, info: dict[Any, Any], conn: Connection | None) -> None:
    """The transaction ended (commit, rollback, or the pool resetting a lost connection)."""
    info.pop(_SUSPENDED, None)
    info.pop(_CHANGES, None)
    info.pop(_DDL, None)
    if conn is not None and gate.active is conn:
        gate.active = None
    owner = info.pop(_OWNER, None)
    if owner is not None:
        gate.release(owner)


def _sqlite_transactions(engine: Engine, busy_timeout_s: float) -> None:
    """SQLAlchemy's recipe for pysqlite (docs: "Enabling Non-Legacy SQLite Transactional Modes"):
    the driver's own transaction handling is off (it began transactions only before DML, so reads
    were not repeatable and savepoints escaped the transaction) and the `begin` event emits BEGIN:
    IMMEDIATE for write units of work, after taking the process's turn (`_WriteGate`)."""
    gate = _gate_for(engine)

    def connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    def begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_BEGIN) != "IMMEDIATE":
            conn.exec_driver_sql("BEGIN")
        elif _PRIORITY.wait:
            _begin_immediate(gate, conn, busy_timeout_s, lambda: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        else:
            _begin_immediate(gate, conn, busy_timeout_s, lambda: _begin_now(_dbapi(conn), busy_timeout_s))

    def before_cursor_execute(conn: Connection, cursor: object, statement: str, parameters: object,
                              context: object, executemany: bool) -> None:
        info = conn.info
        if info.get(_SUSPENDED):
            del info[_SUSPENDED]
            _begin_immediate(gate, conn, busy_timeout_s, lambda: _dbapi(conn).execute("BEGIN IMMEDIATE"))
        elif _OWNER in info and statement.lstrip()[:4].upper() in ("CREA", "DROP", "ALTE"):
            info[_DDL] = True

    def reset(dbapi_connection: object, connection_record: Any, reset_state: object) -> None:
        _end(gate, connection_record.info, None)

    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine, "commit", lambda conn: _end(gate, conn.info, conn))
    event.listen(engine, "rollback", lambda conn: _end(gate, conn.info, conn))
    event.listen(engine, "reset", reset)


def make_engine(url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S, **kwargs: object) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s}, **kwargs)
        _sqlite_transactions(engine, busy_timeout_s)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)
    return engine


def unreachable(url: str) -> str | None:
    """Why the database at `url` cannot be reached, in one line (None when it can): the reason
    the tests and benchmarks give when they skip a backend."""
    try:
        db = Database(url)
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            db.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure is the reason
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.session.info.get("readonly") and (state.is_insert or state.is_update or state.is_delete):
        raise ReadOnlyError("INSERT, UPDATE or DELETE in a read-only session")


def _refuse_flush(session: Session, _flush_context: object, _instances: object) -> None:
    if session.info.get("readonly") and (session.new or session.deleted
                                         or any(session.is_modified(obj) for obj in session.dirty)):
        raise ReadOnlyError("changes flushed in a read-only session")


class Database:
    def __init__(self, url: str, *, echo: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self.engine = make_engine(url, echo=echo, busy_timeout_s=busy_timeout_s)
        self._gate = _gate_for(self.engine) if self.dialect == "sqlite" else None
        # Write units of work begin IMMEDIATE on SQLite; the plain engine (reads, raw connections) defers.
        self._writes = self.engine.execution_options(**{_BEGIN: "IMMEDIATE"}) if self._gate else self.engine
        self._factory = sessionmaker(self._writes, expire_on_commit=False)
        event.listen(self._factory, "do_orm_execute", _scope_queries)
        event.listen(self._factory, "do_orm_execute", _refuse_write_statements)
        event.listen(self._factory, "before_flush", _stamp_tenant)
        event.listen(self._factory, "before_flush", _refuse_flush)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def new_session(self, tenant: str, *, readonly: bool = False) -> Session:
        """A session the caller commits and closes (tests; prefer `session`). On SQLite a writing
        one holds the file's write turn from its first statement to its commit or rollback."""
        session = self._factory(bind=self.engine) if readonly else self._factory()
        session.info["tenant"] = tenant
        session.info["readonly"] = readonly
        return session

    @contextmanager
    def session(self, tenant: str, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception.

        SQLite: a writing session waits for the file's write turn and holds it until it ends
        (`BEGIN IMMEDIATE`), so it never fails half-way on a lock; keep it short and never wait
        inside it for another thread that writes. `readonly=True` sessions read a snapshot without
        waiting for any writer and refuse writes (`ReadOnlyError`): use them for pure reads.
        A writing session opened in a thread whose outer writing session has already written
        joins that transaction through a SAVEPOINT (its commit becomes durable with the outer one);
        otherwise it is a transaction of its own. PostgreSQL: readonly only refuses writes.
        """
        session = self._open(tenant, readonly)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _open(self, tenant: str, readonly: bool) -> Session:
        gate = self._gate
        if gate is None or readonly:
            return self.new_session(tenant, readonly=readonly)
        active = _open_writer(gate)
        if active is not None and not _can_suspend(active):
            session = self._factory(bind=active, join_transaction_mode="create_savepoint")
            session.info.update(tenant=tenant, readonly=False, joined=True)
            return session
        # Wait for the turn before taking a pooled connection, so waiting writers hold none.
        if not gate.acquire(self.busy_timeout_s if _PRIORITY.wait else 0, first=_PRIORITY.first):
            if not _PRIORITY.wait:
                raise WouldWait("this process's write turn is in use")
            raise _locked(f"waited {self.busy_timeout_s:g} s for this process's other writer")
        try:
            session = self.new_session(tenant)
            try:
                session.connection()  # BEGIN IMMEDIATE now: a nested session finds this one open
            except BaseException:
                session.close()
                raise
        finally:
            gate.release(threading.get_ident())
        return session

    def writer(self) -> Connection:
        """A Core connection of the caller's own (closed by it) whose transactions are write
        units of work: on SQLite, `begin()` takes the file's write turn (`priority` applies)
        and emits BEGIN IMMEDIATE, the commit gives the turn back. For a hot path that keeps
        one connection instead of a session per write (the acknowledgement's inbox write)."""
        return self._writes.connect()

    def priority(self, *, wait: bool = True) -> _PriorityScope:
        """Within the block, this thread's writing sessions take the next write turn ahead of
        every writer waiting without priority (SQLite; nothing changes on PostgreSQL). For the
        short writes a request waits for (the durable inbox before an acknowledgement).
        `wait=False`: raise WouldWait at once, having written nothing, instead of waiting for a
        turn in use here or for another process's write lock (the caller goes to a thread)."""
        return _PriorityScope(wait)

    def priority_waiting(self) -> bool:
        """A writer with priority waits for this process's write turn on SQLite: a long unit of
        work (a batch) may commit what it has and let it in."""
        return self._gate is not None and self._gate.priority_waiting()

    def run(self, tenant: str, fn: Callable[[Session], T], *, deadline_s: float = 120.0) -> T:
        """`fn(session)` in a unit of work, run again from the start while the database is busy
        (SQLite: another process held the write lock past the busy timeout; PostgreSQL: a
        serialization failure or deadlock), with growing pauses, until `deadline_s`.

        Only for work that is safe to repeat: its database writes are rolled back before a retry,
        but nothing else `fn` did (messages sent, caches filled) is. A call nested in a unit of
        work that has written joins it and is not retried (the outer one owns the transaction).
        """
        deadline = time.monotonic() + deadline_s
        pause = 0.05
        attempt = 0
        while True:
            attempt += 1
            joined = False
            try:
                with self.session(tenant) as session:
                    joined = bool(session.info.get("joined"))
                    return fn(session)
            except DBAPIError as exc:
                if joined or not is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("database busy (attempt %d, %s), trying again in %.2f s", attempt,
                            str(exc.orig).splitlines()[0][:120], pause)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def upgrade(self) -> None:
        """Bring an empty or older database to the latest schema (all migration heads)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._writes.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")

    def analyze(self) -> None:
        """Refresh the query planner's statistics. SQLite gathers none by itself: without them
        it cannot tell a selective index from a useless one (PostgreSQL's autovacuum does this
        too; running it again is harmless)."""
        with self._writes.begin() as conn:
            conn.execute(text("ANALYZE"))

    def drop_everything(self) -> None:
        """Tests only: remove every table, Alembic's included."""
        with self._writes.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    def dispose(self) -> None:
        self.engine.dispose()
