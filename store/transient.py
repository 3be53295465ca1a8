"""Which failures are worth another attempt later, and which abandon the work at once.

A delivery from the durable inbox that fails on a dropped connection, a database that is
restarting or a SQLite lock is retried with backoff; a genuine bug in a handler is answered
with an error and not retried (it would fail the same way every time)."""
from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout


class Abandon(RuntimeError):
    """Raised inside a unit of work that must be rolled back and not answered (e.g. the inbox
    row it was doing is no longer this worker's)."""


def is_transient(exc: BaseException) -> bool:
    """True for database failures that say nothing about the work itself."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return False


def must_propagate(exc: BaseException) -> bool:
    """What a caller that retries (the inbox worker) must see rather than an error reply."""
    return isinstance(exc, Abandon) or is_transient(exc)
