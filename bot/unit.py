"""Units of work for an event: a transaction of its own, or a savepoint of the inbox worker's
batch transaction.

The inbox worker (bot/inbox.py) processes a claimed batch of rows in ONE transaction, each
row in a savepoint, and commits once for the batch: a commit, with its sequencing of the
expertise evidence, is a good part of an event's cost. While a row of such a batch is
processed, `unit` opens the event's work as a savepoint of that transaction (the tenant
guard set to the event's tenant for its duration), `reading` reads in it (so a row sees
what earlier rows of its batch wrote), `after_commit` holds back what must only happen once
the work is durable (sending the replies) until the batch commits (a row whose savepoint
is rolled back drops its actions), and `before_waiting` commits what the batch did so far
before the processor waits for a platform's API: an open transaction must not wait on the
network (on SQLite it holds the file's only write turn, which acknowledgements need).
Outside a batch they are `Database.session`, a read-only session, an immediate call and
nothing.

A row writes only through `unit`: its first unit of work is the row's savepoint itself
(created then), later ones nest in it.

A batch is first tried optimistically: no savepoint at all (not for its rows, nor for the
hooks and commands `guarded` wraps), since each costs two statements and failures are rare.
Any failure there dooms the batch (`Redo`): the worker rolls it back and does its rows again,
this time each in its savepoints, so a failing row is rolled back and retried alone.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy.orm import Session, SessionTransaction

from store.db import Database
from store.transient import Abandon

log = logging.getLogger(__name__)
Action = Callable[[], None]
F = TypeVar("F", bound=Callable[..., Any])


def batched(processor: F) -> F:
    """Mark an inbox processor whose writes go through `unit`, whose sending goes through
    `after_commit` and which calls `before_waiting` before any platform API call: the worker
    may then process several of its rows in one transaction."""
    processor.batchable = True  # type: ignore[attr-defined]
    return processor


def batchable(processor: object) -> bool:
    return bool(getattr(processor, "batchable", False))


@dataclass
class Batch:
    """The batch transaction's session; the actions due once it commits: those of the rows
    whose savepoint was kept (`kept`) and those of the row being processed (`row`); the row's
    savepoint (None until it writes); how many units are open; and `checkpoint`, the worker's
    "commit what is done so far"."""

    session: Session
    checkpoint: Callable[[], None] | None = None
    kept: list[Action] = field(default_factory=list)
    row: list[Action] = field(default_factory=list)
    savepoint: SessionTransaction | None = None
    depth: int = 0
    optimistic: bool = False
    doomed: bool = False


class Redo(Abandon):
    """A step failed in an optimistic batch, which has no savepoint to roll it back to: the
    batch is rolled back and done again with savepoints."""


def _doom(batch: Batch, exc: Exception) -> Redo:
    """`exc` happened in an optimistic batch: the batch is doomed; the exception to raise."""
    batch.doomed = True
    if isinstance(exc, Redo):
        return exc
    redo = Redo(f"{type(exc).__name__} in an optimistic batch")
    redo.__cause__ = exc
    return redo


_BATCH: ContextVar[Batch | None] = ContextVar("inbox_batch", default=None)


@contextmanager
def batch_row(batch: Batch) -> Iterator[Session]:
    """One row of `batch`: its savepoint released and its actions kept when the row's work
    returns; rolled back, its actions dropped, when it raises."""
    session = batch.session
    tenant = session.info.get("tenant")
    batch.row, batch.savepoint, batch.depth = [], None, 0
    token = _BATCH.set(batch)
    if batch.optimistic:
        try:
            yield session
            batch.kept += batch.row
        except Exception as exc:
            raise _doom(batch, exc)  # noqa: B904 - its cause is set
        finally:
            batch.row = []
            session.info["tenant"] = tenant
            _BATCH.reset(token)
        return
    try:
        yield session
        if batch.savepoint is not None:
            batch.savepoint.commit()
        batch.kept += batch.row
    except BaseException:
        if batch.savepoint is not None and batch.savepoint.is_active:
            batch.savepoint.rollback()
        raise
    finally:
        batch.row, batch.savepoint = [], None
        session.info["tenant"] = tenant
        _BATCH.reset(token)


@contextmanager
def unit(db: Database, tenant: str) -> Iterator[Session]:
    """The event's unit of work for `tenant`: committed on success, rolled back on any exception."""
    batch = _BATCH.get()
    if batch is None:
        with db.session(tenant) as session:
            yield session
        return
    session = batch.session
    outer = session.info.get("tenant")
    session.info["tenant"] = tenant
    if batch.optimistic:
        try:
            yield session
            session.flush()  # while the tenant guard still stamps `tenant`
        except Exception as exc:
            raise _doom(batch, exc)  # noqa: B904 - its cause is set
        finally:
            session.info["tenant"] = outer
        return
    own = batch.savepoint is None  # the row's first write: its savepoint is this unit's
    savepoint = session.begin_nested()
    if own:
        batch.savepoint = savepoint
    batch.depth += 1
    try:
        yield session
        if own:
            session.flush()  # while the tenant guard still stamps `tenant`; released with the row
        else:
            savepoint.commit()  # flushes likewise
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        if own:  # what the row does next (an error reply, "done") gets a savepoint of its own
            batch.savepoint = None
        raise
    finally:
        batch.depth -= 1
        session.info["tenant"] = outer


@contextmanager
def guarded(session: Session) -> Iterator[None]:
    """One step of a unit whose failure must not undo the rest (a hook, a command): in a
    savepoint, rolled back when the step raises. In an optimistic batch, no savepoint: a
    failure dooms the batch (`Redo`)."""
    batch = _BATCH.get()
    if batch is not None and batch.optimistic and batch.session is session:
        try:
            yield
        except Exception as exc:
            raise _doom(batch, exc)  # noqa: B904 - its cause is set
        return
    savepoint = session.begin_nested()
    try:
        yield
        savepoint.commit()
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise


@contextmanager
def reading(db: Database, tenant: str) -> Iterator[Session]:
    """A read for `tenant`: in the batch's transaction while a row is processed, else a
    read-only session."""
    batch = _BATCH.get()
    if batch is None:
        with db.session(tenant, readonly=True) as session:
            yield session
        return
    session = batch.session
    outer = session.info.get("tenant")
    session.info["tenant"] = tenant
    try:
        yield session
    finally:
        session.info["tenant"] = outer


def after_commit(action: Action) -> None:
    """Run `action` once the current work is committed: at once outside a batch, after the
    batch's commit inside one (never, if the row's savepoint is rolled back)."""
    batch = _BATCH.get()
    if batch is None:
        action()
    else:
        batch.row.append(action)


def deferring() -> bool:
    """Whether the current work may hold writes back until the batch ends (store/memo.py
    `defer`): in an optimistic batch, where any failure, a held write's included, rolls the
    whole attempt back and its rows are done again each alone, in savepoints, without holding."""
    batch = _BATCH.get()
    return batch is not None and batch.optimistic


def before_waiting() -> None:
    """About to wait for the network: in a batch, commit what it did so far (the finished rows,
    and what this row wrote before its main event, as it would have been without a batch)."""
    batch = _BATCH.get()
    if batch is None or batch.checkpoint is None or batch.depth:
        return
    batch.checkpoint()
    batch.savepoint = None


def run_kept(batch: Batch) -> None:
    """The batch committed: its kept rows' actions, in order; one failing does not stop the others."""
    actions, batch.kept = batch.kept, []
    token = _BATCH.set(None)  # they run as after any commit, outside the batch
    try:
        for action in actions:
            try:
                action()
            except Exception:  # noqa: BLE001 - the work is committed; its replies are the outbox's to retry
                log.exception("inbox batch: an action after the commit failed")
    finally:
        _BATCH.reset(token)
