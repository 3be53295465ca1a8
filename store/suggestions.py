"""Suggestions and space requests (queries only).

Privacy: a suggestion or a request is read by its author, the people it was routed to (the
référents, the channel's animators for access, the admins it was escalated to) and the
admins — nobody else, not even its existence (`suggestion_readable_by`,
`request_readable_by`). Every query returning rows to show takes that reader.

Transitions are conditional updates, so two référents pressing a button at once, or two
worker processes escalating, make exactly one change.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import ColumnElement, exists, false, or_, select, true, update
from sqlalchemy.orm import Session

from store.ideas import next_number
from store.idempotency import insert_ignore
from store.models.referents import SpaceRequest, SpaceRouting, Suggestion, SuggestionRouting

OPEN = ("open", "taken", "answered")  # a suggestion still waiting for an outcome


# Who may read -------------------------------------------------------------------------
def suggestion_readable_by(reader_id: int, *, admin: bool) -> ColumnElement[bool]:
    routed = exists(select(SuggestionRouting.id).where(SuggestionRouting.suggestion_id == Suggestion.id,
                                                       SuggestionRouting.person_id == reader_id).correlate_except(SuggestionRouting))
    return or_(true() if admin else false(), Suggestion.author_id == reader_id, routed)


def request_readable_by(reader_id: int, *, admin: bool) -> ColumnElement[bool]:
    routed = exists(select(SpaceRouting.id).where(SpaceRouting.request_id == SpaceRequest.id,
                                                  SpaceRouting.person_id == reader_id).correlate_except(SpaceRouting))
    return or_(true() if admin else false(), SpaceRequest.author_id == reader_id, routed)


# Suggestions --------------------------------------------------------------------------
def create_suggestion(session: Session, tenant: str, *, source_key: str, author_id: int, text: str, anonymous: bool,
                      conversation_id: int | None, permalink: str, route: str, route_value: str,
                      escalate_at: datetime | None, now: datetime) -> Suggestion | None:
    """The new suggestion, or None when this source message already made one (a redelivery)."""
    for _ in range(5):
        if suggestion_by_source(session, source_key) is not None:
            return None
        values = {"tenant": tenant, "number": next_number(session, Suggestion), "text": text, "author_id": author_id,
                  "anonymous": anonymous, "conversation_id": conversation_id, "source_key": source_key[:300],
                  "permalink": permalink[:500], "route": route, "route_value": route_value[:200], "status": "open",
                  "answer": "", "reason": "", "created_at": now, "updated_at": now, "escalate_at": escalate_at}
        if insert_ignore(session, Suggestion, values):
            return suggestion_by_source(session, source_key)
    raise RuntimeError("could not number a new suggestion")


def suggestion_by_source(session: Session, source_key: str) -> Suggestion | None:
    return session.scalar(select(Suggestion).where(Suggestion.source_key == source_key[:300]))


def suggestion(session: Session, number: int, *, reader_id: int, admin: bool) -> Suggestion | None:
    """Suggestion `number`, or None when there is none `reader_id` may read."""
    return session.scalar(select(Suggestion).where(Suggestion.number == number, suggestion_readable_by(reader_id, admin=admin)))


def route_suggestion(session: Session, tenant: str, suggestion_id: int, person_ids: Iterable[int], now: datetime, *,
                     escalated: bool = False) -> None:
    for pid in person_ids:
        insert_ignore(session, SuggestionRouting, {"tenant": tenant, "suggestion_id": suggestion_id, "person_id": pid,
                                                   "escalated": escalated, "routed_at": now})


def suggestion_routed(session: Session, suggestion_id: int) -> list[int]:
    return list(session.scalars(select(SuggestionRouting.person_id).where(SuggestionRouting.suggestion_id == suggestion_id)
                                .order_by(SuggestionRouting.id)))


def is_routed(session: Session, suggestion_id: int, person_id: int) -> bool:
    return session.scalar(select(SuggestionRouting.id).where(SuggestionRouting.suggestion_id == suggestion_id,
                                                             SuggestionRouting.person_id == person_id)) is not None


def move(session: Session, suggestion_id: int, *, came_from: Sequence[str], status: str, now: datetime,
         handler_id: int | None = None, answer: str | None = None, reason: str | None = None) -> bool:
    """From one of `came_from` to `status`; False when someone else moved it first."""
    values: dict[str, object] = {"status": status, "updated_at": now}
    if handler_id is not None:
        values["handler_id"] = handler_id
    if answer is not None:
        values["answer"] = answer
    if reason is not None:
        values["reason"] = reason
    result = session.execute(update(Suggestion).where(Suggestion.id == suggestion_id, Suggestion.status.in_(list(came_from)))
                             .values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


def mine(session: Session, author_id: int, limit: int = 20) -> list[Suggestion]:
    return list(session.scalars(select(Suggestion).where(Suggestion.author_id == author_id)
                                .order_by(Suggestion.number.desc()).limit(limit)))


def handled_by(session: Session, person_id: int, *, admin: bool, limit: int = 20) -> list[Suggestion]:
    """The suggestions routed to `person_id` (every one for an admin), still open first."""
    query = select(Suggestion).where(suggestion_readable_by(person_id, admin=admin), Suggestion.author_id != person_id)
    return list(session.scalars(query.order_by(Suggestion.status.in_(list(OPEN)).desc(), Suggestion.number.desc()).limit(limit)))


def due_escalations(session: Session, now: datetime, limit: int = 200) -> list[tuple[str, int]]:
    rows = session.execute(select(Suggestion.tenant, Suggestion.id).where(
        Suggestion.status == "open", Suggestion.escalated_at.is_(None), Suggestion.escalate_at.is_not(None),
        Suggestion.escalate_at <= now).order_by(Suggestion.escalate_at).limit(limit))
    return [(tenant, sid) for tenant, sid in rows]


def claim_escalation(session: Session, suggestion_id: int, now: datetime) -> bool:
    """Exactly one process escalates a suggestion, once."""
    result = session.execute(update(Suggestion).where(Suggestion.id == suggestion_id, Suggestion.escalated_at.is_(None),
                                                      Suggestion.status == "open")
                             .values(escalated_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1


# Space requests -----------------------------------------------------------------------
def create_request(session: Session, tenant: str, *, source_key: str, kind: str, author_id: int, name: str, purpose: str,
                   private: bool, conversation_id: int | None, route: str, route_value: str, now: datetime) -> SpaceRequest | None:
    for _ in range(5):
        if request_by_source(session, source_key) is not None:
            return None
        values = {"tenant": tenant, "number": next_number(session, SpaceRequest), "kind": kind, "author_id": author_id,
                  "name": name[:200], "purpose": purpose, "private": private, "conversation_id": conversation_id,
                  "source_key": source_key[:300], "route": route, "route_value": route_value[:200], "status": "pending",
                  "reason": "", "created_at": now}
        if insert_ignore(session, SpaceRequest, values):
            return request_by_source(session, source_key)
    raise RuntimeError("could not number a new request")


def request_by_source(session: Session, source_key: str) -> SpaceRequest | None:
    return session.scalar(select(SpaceRequest).where(SpaceRequest.source_key == source_key[:300]))


def space_request(session: Session, number: int, *, reader_id: int, admin: bool) -> SpaceRequest | None:
    return session.scalar(select(SpaceRequest).where(SpaceRequest.number == number, request_readable_by(reader_id, admin=admin)))


def route_request(session: Session, tenant: str, request_id: int, person_ids: Iterable[int], now: datetime) -> None:
    for pid in person_ids:
        insert_ignore(session, SpaceRouting, {"tenant": tenant, "request_id": request_id, "person_id": pid, "routed_at": now})


def request_routed(session: Session, request_id: int) -> list[int]:
    return list(session.scalars(select(SpaceRouting.person_id).where(SpaceRouting.request_id == request_id).order_by(SpaceRouting.id)))


def pending_for(session: Session, author_id: int, kind: str, *, name: str = "", conversation_id: int | None = None) -> SpaceRequest | None:
    """The author's pending or approved request for the same thing (asking twice adds nothing)."""
    query = select(SpaceRequest).where(SpaceRequest.author_id == author_id, SpaceRequest.kind == kind,
                                       SpaceRequest.status.in_(("pending", "approved")))
    query = query.where(SpaceRequest.conversation_id == conversation_id) if kind == "access" else query.where(SpaceRequest.name == name)
    return session.scalar(query.limit(1))


def decide(session: Session, request_id: int, *, status: str, by: int, reason: str, now: datetime) -> bool:
    """pending → approved or declined; False when it was already decided."""
    result = session.execute(update(SpaceRequest).where(SpaceRequest.id == request_id, SpaceRequest.status == "pending")
                             .values(status=status, decided_by=by, decided_at=now, reason=reason)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def approved_waiting(session: Session, *, conversation_id: int | None = None, name: str = "",
                     person_ids: Iterable[int] = ()) -> list[SpaceRequest]:
    """Approved requests a join settles: access to `conversation_id` for one of `person_ids`,
    or a new channel called `name` (its author joining it)."""
    ids = list(person_ids)
    if not ids:
        return []
    access = (SpaceRequest.kind == "access") & (SpaceRequest.conversation_id == conversation_id)
    channel = (SpaceRequest.kind == "channel") & (SpaceRequest.name == name)
    return list(session.scalars(select(SpaceRequest).where(SpaceRequest.status == "approved", SpaceRequest.author_id.in_(ids),
                                                           or_(access, channel))))


def mark_done(session: Session, request_id: int, now: datetime, conversation_id: int | None = None) -> bool:
    values: dict[str, object] = {"status": "done", "done_at": now}
    if conversation_id is not None:
        values["conversation_id"] = conversation_id
    result = session.execute(update(SpaceRequest).where(SpaceRequest.id == request_id, SpaceRequest.status == "approved")
                             .values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


def requests_of(session: Session, reader_id: int, *, admin: bool, limit: int = 20) -> list[SpaceRequest]:
    query = select(SpaceRequest).where(request_readable_by(reader_id, admin=admin))
    return list(session.scalars(query.order_by((SpaceRequest.status == "pending").desc(), SpaceRequest.number.desc()).limit(limit)))
