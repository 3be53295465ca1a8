"""A dropped database connection in the middle of a delivery's work means "try again later",
wherever it strikes: never "done" with the work missing, never an error answer."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.exc import InvalidRequestError, OperationalError, PendingRollbackError
from sqlalchemy.pool import NullPool

from bot.clock import FixedClock
from bot.context import Services
from bot.core import Bot
from bot.inbox import InboxWorker
from bot.types import ConversationRef, IncomingMessage, UserRef
from store import inbox as inbox_store
from store.db import ALL_TENANTS
from store.models.inbox import InboxEvent
from store.models.social import Message
from store.transient import is_transient

TENANT = "T-faults"


def _message(n: int) -> IncomingMessage:
    return IncomingMessage(id=f"m{n}", text=f"shipping the #rollout plan, part {n}", sender=UserRef("slack", TENANT, "U1", "Ann"),
                           conversation=ConversationRef("slack", TENANT, "C1", "public", name="general"), addressed=False)


def test_what_counts_as_transient() -> None:
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert is_transient(lost)
    assert is_transient(PendingRollbackError("Can't reconnect until invalid transaction is rolled back", code="8s2b"))
    assert not is_transient(PendingRollbackError("rolled back due to a previous exception during flush", code="7s2a"))
    assert not is_transient(InvalidRequestError("a bug"))
    assert not is_transient(ZeroDivisionError())
    try:
        try:
            raise lost
        except OperationalError as exc:
            raise RuntimeError("while indexing") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    try:
        try:
            raise lost
        except OperationalError:
            raise ValueError("a bug in the error handling")  # noqa: B904 - implicit context only
    except ValueError as bug:
        assert not is_transient(bug)


@pytest.mark.postgresql_only
def test_a_connection_lost_inside_a_hook_retries_the_delivery(services: Services, bot: Bot, clock: FixedClock,
                                                              db_url: str) -> None:
    """The server drops the connection while an ambient hook runs: the hook's savepoint catches
    the failure, and what the transaction does next raises SQLAlchemy's PendingRollbackError
    ("Can't reconnect until invalid transaction is rolled back"). That must retry the delivery;
    taken for a handler bug, it marked the row done with the message never indexed."""
    db = services.db
    admin = create_engine(make_url(db_url.replace("postgresql://", "postgresql+psycopg://", 1)), poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")
    dropped: list[int] = []

    def dropping_hook(ctx, _event):  # type: ignore[no-untyped-def]
        if not dropped:
            pid = int(ctx.session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            dropped.append(pid)
            ctx.session.execute(text("SELECT 1"))  # the connection is gone
        return []

    bot.registry.on(IncomingMessage, dropping_hook)
    inbox_store.put(db, "test", "drop-1", "event", "1", clock.now())

    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        assert bot.handle(_message(int(row.payload)), in_transaction=finish) == []

    worker = InboxWorker(db, clock, {"test": work})
    try:
        assert worker.run_once() == 1
        assert dropped
        with db.session(ALL_TENANTS, readonly=True) as s:
            row = s.scalar(select(InboxEvent).where(InboxEvent.dedupe_key == "drop-1"))
            assert row is not None and row.state == "pending", "the delivery was marked done without its work"
            assert s.scalar(select(func.count(Message.id))) == 0
        clock.advance(timedelta(seconds=5))
        assert worker.run_once() == 1
        with db.session(ALL_TENANTS, readonly=True) as s:
            assert s.scalar(select(InboxEvent.state).where(InboxEvent.dedupe_key == "drop-1")) == "done"
            assert s.scalar(select(func.count(Message.id))) == 1
    finally:
        admin.dispose()
