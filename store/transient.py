"""Which failures are worth another attempt later, and which abandon the work at once.

A delivery from the durable inbox that fails on a dropped connection, a database that is
restarting or a SQLite lock is retried with backoff; a genuine bug in a handler is answered
with an error and not retried (it would fail the same way every time)."""
from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError, TimeoutError as PoolTimeout

# SQLAlchemy's code for "Can't reconnect until invalid transaction is rolled back": the
# connection was lost earlier in this transaction (a failure caught by a hook's savepoint).
_LOST_CONNECTION = "8s2b"


class Abandon(RuntimeError):
    """Raised inside a unit of work that must be rolled back and not answered (e.g. the inbox
    row it was doing is no longer this worker's)."""


def is_transient(exc: BaseException) -> bool:
    """True for database failures that say nothing about the work itself: the failure, or what
    it was raised from (`raise … from …`), is a lost connection, a database away or a lock."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OperationalError, InterfaceError, PoolTimeout)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, PendingRollbackError) and current.code == _LOST_CONNECTION:
            return True
        current = current.__cause__
    return False


def must_propagate(exc: BaseException) -> bool:
    """What a caller that retries (the inbox worker) must see rather than an error reply."""
    return isinstance(exc, Abandon) or is_transient(exc)
