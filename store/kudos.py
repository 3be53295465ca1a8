"""Kudos: who thanked whom, for what, and the leaderboard (queries only)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models.contribution import Kudos


def given_since(session: Session, giver_id: int, since: datetime) -> int:
    """Kudos rows (one per recipient) given by `giver_id` since `since`: the daily allowance."""
    return session.scalar(select(func.count(Kudos.id)).where(Kudos.giver_id == giver_id, Kudos.created_at >= since)) or 0


def received_from(session: Session, recipient_id: int, giver_id: int, since: datetime) -> bool:
    """True when `giver_id` thanked `recipient_id` since `since` (used to discount reciprocity)."""
    found = session.scalar(
        select(Kudos.id).where(Kudos.giver_id == giver_id, Kudos.recipient_id == recipient_id, Kudos.created_at >= since).limit(1)
    )
    return found is not None


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
    help_request_id: int | None = None,
) -> Kudos:
    row = Kudos(giver_id=giver_id, recipient_id=recipient_id, reason=reason, skills=skills,
                conversation_id=conversation_id, weight=weight, created_at=now, help_request_id=help_request_id)
    session.add(row)
    session.flush()
    return row


def top(session: Session, since: datetime | None, limit: int = 10) -> list[tuple[int, int]]:
    """(person id, kudos received) best first; ties by id for a stable order."""
    count = func.count(Kudos.id)
    query = select(Kudos.recipient_id, count).group_by(Kudos.recipient_id).order_by(count.desc(), Kudos.recipient_id).limit(limit)
    if since is not None:
        query = query.where(Kudos.created_at >= since)
    return [(pid, n) for pid, n in session.execute(query)]
