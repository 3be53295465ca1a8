"""The durable outbox's queries (the style of store/inbox.py): record effects inside the
transaction that decided them, leased to the process that sends them after the commit; claim
due rows with a lease (the sweeper); mark them sent, or back off and give up after
MAX_ATTEMPTS.

At-least-once, deduplicated where the platform allows: a process killed after the platform
took an effect but before "sent" leaves the row pending; its next attempt is a retry, sent
under `bot.delivery.attempt(key, retry=True)` so Slack updates the earlier post in place.

Delivery steps (`note_step`, `recall_step`): what a sender did on the platform before an
effect's visible step, kept per delivery key outside the sending's fate (its own short
transaction), so a retry finishes that work rather than starting it again (Slack: the file
uploaded but maybe not yet shared into its channel).
"""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from store.db import ALL_TENANTS, Database
from store.models.outbox import DeliveryStep, OutboxEntry

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)  # the sender after the commit, or a sweeper, has this long before another takes over
BACKOFF_BASE = 2.0
BACKOFF_CAP = 600.0
STEP_SKEW = timedelta(minutes=1)  # clocks of the process that recorded an effect and of the one sending it


@dataclass(frozen=True)
class Leased:
    """A row in the hands of one sender, with the token that proves the lease is its own."""

    id: int
    effects: str
    context: str
    done: frozenset[int]
    attempts: int
    token: str
    created_at: datetime


def new_token(worker: str = "") -> str:
    return f"{worker[:40]}:{uuid.uuid4().hex[:16]}"


def record(session: Session, effects: str, now: datetime, *, platform: str = "", tenant: str = "", source: str = "",
           context: str = "{}", token: str | None = None, lease: timedelta = LEASE, due: datetime | None = None) -> Leased:
    """Add a row in the caller's transaction; leased to `token` (the process that sends it after
    the commit), or due at `due` (default: at once) for the sweeper when `token` is None."""
    row = OutboxEntry(platform=platform[:20], tenant=tenant[:120], source=source[:80], effects=effects, context=context,
                      done="", state="pending", attempts=1 if token else 0, created_at=now, next_attempt_at=due or now,
                      locked_by=token or "", locked_until=now + lease if token else None, last_error="")
    session.add(row)
    session.flush()
    return Leased(row.id, effects, context, frozenset(), row.attempts, token or "", now)


def _due(now: datetime):  # noqa: ANN202 - a SQLAlchemy clause
    return and_(OutboxEntry.state == "pending", OutboxEntry.next_attempt_at <= now,
                or_(OutboxEntry.locked_until.is_(None), OutboxEntry.locked_until < now))


def claim(db: Database, worker: str, limit: int, now: datetime, lease: timedelta = LEASE) -> list[Leased]:
    """Lease up to `limit` due rows, oldest first (the sweeper). An idle outbox costs one read."""
    token = new_token(worker)
    if db.dialect == "sqlite":  # a writing session waits for the file's write turn: look first
        with db.session(ALL_TENANTS, readonly=True) as session:
            if session.execute(select(OutboxEntry.id).where(_due(now)).limit(1)).first() is None:
                return []
    with db.session(ALL_TENANTS) as session:
        due = select(OutboxEntry.id).where(_due(now)).order_by(OutboxEntry.id).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(session.scalars(due))
        if not ids:
            return []
        rows = session.execute(
            update(OutboxEntry).where(OutboxEntry.id.in_(ids), _due(now))
            .values(locked_by=token, locked_until=now + lease, attempts=OutboxEntry.attempts + 1)
            .returning(OutboxEntry.id, OutboxEntry.effects, OutboxEntry.context, OutboxEntry.done,
                       OutboxEntry.attempts, OutboxEntry.created_at)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted((Leased(r.id, r.effects, r.context, parse_done(r.done), r.attempts, token, r.created_at) for r in rows),
                  key=lambda r: r.id)


def parse_done(text: str) -> frozenset[int]:
    return frozenset(int(p) for p in (text or "").split(",") if p.strip().isdigit())


def mark_sent(db: Database, row: Leased, now: datetime) -> bool:
    """Every effect of the row went out. False when the row was no longer this sender's."""
    with db.session(ALL_TENANTS) as session:
        result = session.execute(
            update(OutboxEntry).where(OutboxEntry.id == row.id, OutboxEntry.state == "pending", OutboxEntry.locked_by == row.token)
            .values(state="sent", sent_at=now, locked_until=None, last_error="").execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)


def backoff_seconds(attempts: int) -> float:
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


def fail(db: Database, row: Leased, done: frozenset[int], error: str, now: datetime, retry_after: float | None = None) -> str:
    """Some effects did not go out: remember those that did, back off (the platform's
    Retry-After when it said one), or give up at MAX_ATTEMPTS. Returns the new state."""
    given_up = row.attempts >= MAX_ATTEMPTS
    wait = min(BACKOFF_CAP, retry_after) if retry_after is not None else backoff_seconds(row.attempts)
    values: dict[str, object] = {"locked_until": None, "last_error": error[:500], "done": ",".join(str(i) for i in sorted(done))[:2000]}
    if given_up:
        values["state"] = "failed"
    else:
        values["next_attempt_at"] = now + timedelta(seconds=max(1.0, wait))
    with db.session(ALL_TENANTS) as session:
        session.execute(
            update(OutboxEntry).where(OutboxEntry.id == row.id, OutboxEntry.state == "pending", OutboxEntry.locked_by == row.token)
            .values(**values).execution_options(synchronize_session=False)
        )
    if given_up:
        log.error("outbox: row %d given up after %d attempts: %s", row.id, row.attempts, error[:200])
        return "failed"
    return "pending"


def pending_count(db: Database) -> int:
    with db.session(ALL_TENANTS, readonly=True) as session:
        return int(session.scalar(select(func.count(OutboxEntry.id)).where(OutboxEntry.state == "pending")) or 0)


def purge_sent(db: Database, before: datetime, limit: int = 5000) -> int:
    """Forget rows sent before `before`; failed rows stay for an operator to look at."""
    with db.session(ALL_TENANTS) as session:
        old = select(OutboxEntry.id).where(OutboxEntry.state == "sent", OutboxEntry.sent_at < before).limit(limit)
        result = session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(old)).execution_options(synchronize_session=False))
        return int(result.rowcount or 0)


def note_step(db: Database, key: str, step: str, value: str, now: datetime) -> None:
    """Remember (committed at once) that the sending of `key` did `step`, with `value` (JSON);
    a later note of the same step replaces it."""
    with db.session(ALL_TENANTS) as session:
        session.execute(delete(DeliveryStep).where(DeliveryStep.key == key[:200], DeliveryStep.step == step[:40])
                        .execution_options(synchronize_session=False))
        session.add(DeliveryStep(key=key[:200], step=step[:40], value=value, noted_at=now))


def recall_step(db: Database, key: str, step: str, since: datetime | None = None) -> tuple[str, datetime] | None:
    """(value, when) of the note `note_step` left for `key`'s `step`, if any. With `since` (when
    the effect was first recorded), a note older than the effect is someone else's: ignored."""
    with db.session(ALL_TENANTS, readonly=True) as session:
        row = session.execute(select(DeliveryStep.value, DeliveryStep.noted_at)
                              .where(DeliveryStep.key == key[:200], DeliveryStep.step == step[:40])).first()
    if row is None or (since is not None and row.noted_at < since - STEP_SKEW):
        return None
    return str(row.value), row.noted_at


def purge_steps(db: Database, before: datetime) -> int:
    """Forget delivery steps noted before `before` (their effects are long sent or given up).
    Nothing to forget costs one read (no write turn on SQLite)."""
    with db.session(ALL_TENANTS, readonly=True) as session:
        if session.execute(select(DeliveryStep.key).where(DeliveryStep.noted_at < before).limit(1)).first() is None:
            return 0
    with db.session(ALL_TENANTS) as session:
        result = session.execute(delete(DeliveryStep).where(DeliveryStep.noted_at < before)
                                 .execution_options(synchronize_session=False))
        return int(result.rowcount or 0)
