"""Kudos: who thanked whom, for what, and the leaderboard (queries only).

Privacy: a thank-you given in a private channel or group chat counts only for its current
members (`store.visibility`); every query that shows or counts other people's kudos takes
the reader and where the answer is shown. `given_since` and `received_from` read the
giver's own rows for the allowance and the reciprocity discount and show nothing.

One thank-you per recipient a day: `add` takes the giver's local date and a unique key on
(giver, recipient, day) refuses a second one, even from two processes at once.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models.contribution import Kudos
from store.models.core import Conversation
from store.visibility import contribution_shown


def given_since(session: Session, giver_id: int, since: datetime) -> int:
    """Kudos rows (one per recipient) given by `giver_id` since `since`: the daily allowance."""
    return session.scalar(select(func.count(Kudos.id)).where(Kudos.giver_id == giver_id, Kudos.created_at >= since)) or 0


def received_from(session: Session, recipient_id: int, giver_id: int, since: datetime) -> bool:
    """True when `giver_id` thanked `recipient_id` since `since` (used to discount reciprocity)."""
    found = session.scalar(
        select(Kudos.id).where(Kudos.giver_id == giver_id, Kudos.recipient_id == recipient_id, Kudos.created_at >= since).limit(1)
    )
    return found is not None


class AlreadyThanked(Exception):
    """The giver already thanked this recipient on this day."""


def thanked_on(session: Session, giver_id: int, day: date) -> set[int]:
    """The people `giver_id` already thanked on their local `day`."""
    return set(session.scalars(select(Kudos.recipient_id).where(Kudos.giver_id == giver_id, Kudos.day == day)))


def add(
    session: Session,
    *,
    giver_id: int,
    recipient_id: int,
    reason: str,
    skills: str,
    conversation_id: int | None,
    weight: float,
    now: datetime,
    day: date,
    help_request_id: int | None = None,
) -> Kudos:
    """One thank-you; raises AlreadyThanked when this giver thanked this recipient on `day`."""
    row = Kudos(giver_id=giver_id, recipient_id=recipient_id, reason=reason, skills=skills,
                conversation_id=conversation_id, weight=weight, created_at=now, day=day, help_request_id=help_request_id)
    savepoint = session.begin_nested()
    try:
        session.add(row)
        session.flush()
    except IntegrityError as err:
        savepoint.rollback()
        raise AlreadyThanked(recipient_id) from err
    savepoint.commit()
    return row


def top(
    session: Session, since: datetime | None, *, reader_id: int, shown_in: Conversation | None, limit: int = 10
) -> list[tuple[int, int]]:
    """(person id, kudos received) best first; ties by id for a stable order. Only kudos that
    `reader_id` and everyone reading `shown_in` may read count (a public channel: public ones)."""
    count = func.count(Kudos.id)
    query = (select(Kudos.recipient_id, count).where(contribution_shown(Kudos, reader_id=reader_id, shown_in=shown_in))
             .group_by(Kudos.recipient_id).order_by(count.desc(), Kudos.recipient_id).limit(limit))
    if since is not None:
        query = query.where(Kudos.created_at >= since)
    return [(pid, n) for pid, n in session.execute(query)]
