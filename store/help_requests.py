"""Help requests, their routing to experts, experts' away periods and help channels (queries only).

Several worker processes may run the escalation job at once: `claim_escalation` and
`claim` are conditional updates, so exactly one of them wins each transition.

The privacy contract extends to requests (`request_readable_by`): a request asked in a
private channel or group chat reaches only that conversation's members (routing too:
`audience`), until its asker shares it with experts outside (`share`). A request asked in a
DM with the bot (or with no conversation) is the asker's own: the experts it is routed to
may read it. Every query here that returns requests to show someone takes that reader.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from store.db import ALL_TENANTS, TenantError
from store.idempotency import insert_ignore
from store.ideas import next_number, similarity
from store.memo import memo
from store.models.contribution import ExpertAway, HelpChannel, HelpRequest, HelpRouting
from store.models.core import Conversation, ConversationMember, PostedMessage
from store.visibility import contribution_readable_by

SIMILAR_THRESHOLD = 60.0
_CHANNELS = "help_channels"  # {(tenant, conversation id): HelpChannel | None} read in this session
PRIVATE_KINDS = ("private", "group")  # a DM with the bot is the asker's own, not a private room


# Who may read a request ------------------------------------------------------
def _conversation_is(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A clause on `HelpRequest`: its conversation exists and meets `conditions`."""
    return exists(select(Conversation.id).where(Conversation.id == HelpRequest.conversation_id, *conditions)
                  .correlate_except(Conversation))


def _in_room(reader_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A clause on `HelpRequest`: asked in a channel or group chat `reader_id` may read (the
    contribution rule of store/visibility.py: public, or a member; a DM is not a room)."""
    return and_(_conversation_is(Conversation.kind != "dm"), contribution_readable_by(HelpRequest, reader_id))


def request_readable_by(reader_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A clause on `HelpRequest`: true where `reader_id` may read the request (its question).

    The asker; whoever may read the channel or group chat it was asked in; and the experts it
    was routed to, unless it comes from a private channel or group chat they are not a member
    of and its asker has not shared it. A request asked in a DM with the bot is the asker's
    own: only the experts it was routed to read it.
    """
    routed = exists(select(HelpRouting.id).where(HelpRouting.request_id == HelpRequest.id, HelpRouting.person_id == reader_id)
                    .correlate_except(HelpRouting))
    private = _conversation_is(Conversation.kind.in_(PRIVATE_KINDS))
    return or_(HelpRequest.asker_id == reader_id, _in_room(reader_id),
               and_(routed, or_(~private, HelpRequest.shared_at.is_not(None))))


def answer_readable_by(reader_id: int) -> ColumnElement[bool]:
    """A clause on `HelpRequest`: its whole thread (answer included) is readable by `reader_id`:
    the asker, or whoever may read its channel. Experts reached by sharing read the question only."""
    return or_(HelpRequest.asker_id == reader_id, _in_room(reader_id))


def can_read(session: Session, request: HelpRequest, person_id: int) -> bool:
    found = session.scalar(select(HelpRequest.id).where(HelpRequest.id == request.id, request_readable_by(person_id)))
    return found is not None


def can_read_answer(session: Session, request: HelpRequest, person_id: int) -> bool:
    found = session.scalar(select(HelpRequest.id).where(HelpRequest.id == request.id, answer_readable_by(person_id)))
    return found is not None


def private_room(session: Session, request: HelpRequest) -> Conversation | None:
    """The request's conversation when it is a private channel or group chat."""
    if request.conversation_id is None:
        return None
    return session.scalar(select(Conversation).where(Conversation.id == request.conversation_id,
                                                     Conversation.kind.in_(PRIVATE_KINDS)))


def audience(session: Session, request: HelpRequest) -> set[int] | None:
    """Who the request may be routed to: its private conversation's members until it is
    shared; None when anyone may be."""
    if request.shared_at is not None or private_room(session, request) is None:
        return None
    return set(session.scalars(select(ConversationMember.person_id).where(
        ConversationMember.conversation_id == request.conversation_id)))


def members_among(session: Session, conversation_id: int, person_ids: Iterable[int]) -> set[int]:
    """Those of `person_ids` who belong to the conversation."""
    ids = list(person_ids)
    if not ids:
        return set()
    return set(session.scalars(select(ConversationMember.person_id).where(
        ConversationMember.conversation_id == conversation_id, ConversationMember.person_id.in_(ids))))


def share(session: Session, request_id: int, by: int, now: datetime) -> bool:
    """The asker lets experts outside the conversation see the question; False when already shared."""
    result = session.execute(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.shared_at.is_(None))
        .values(shared_at=now, shared_by=by)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# Help channels ---------------------------------------------------------------
def channel_settings(session: Session, conversation_id: int) -> HelpChannel | None:
    """The conversation's help settings (None: not a help channel). Every ambient message asks:
    read once per session, so once per inbox batch (store/memo.py)."""
    read = memo(session, _CHANNELS)
    key = (session.info.get("tenant"), conversation_id)
    if key not in read:
        read[key] = session.scalar(select(HelpChannel).where(HelpChannel.conversation_id == conversation_id))
    return read[key]


def set_channel(session: Session, conversation_id: int, enabled: bool, hours: float | None, by: int, now: datetime) -> HelpChannel:
    """One row per conversation: INSERT … ON CONFLICT DO NOTHING, then update, so two people
    setting up the same channel at once end with one row (the later values), no failure."""
    tenant = session.info.get("tenant")
    if tenant in (None, ALL_TENANTS):
        raise TenantError("a help channel belongs to one workspace")
    values = {"tenant": tenant, "conversation_id": conversation_id, "enabled": enabled, "escalation_hours": hours,
              "updated_by": by, "updated_at": now}
    inserted = insert_ignore(session, HelpChannel, values)
    memo(session, _CHANNELS).pop((tenant, conversation_id), None)  # written here: read again
    row = channel_settings(session, conversation_id)
    assert row is not None
    if not inserted:
        row.enabled, row.updated_by, row.updated_at = enabled, by, now
        if hours is not None:
            row.escalation_hours = hours
    session.flush()
    return row


# Requests --------------------------------------------------------------------
def create(
    session: Session,
    tenant: str,
    *,
    source_key: str,
    asker_id: int,
    question: str,
    topics: Sequence[str],
    conversation_id: int | None,
    conversation_external_id: str,
    thread_id: str,
    permalink: str,
    escalate_at: datetime | None,
    now: datetime,
) -> HelpRequest | None:
    """The new request, or None when this source message already made one (a redelivery).

    `ON CONFLICT DO NOTHING` also swallows a clash on the number (a concurrent request took it):
    then the source key is still free, so try the next number.
    """
    for _ in range(5):
        if by_source(session, source_key) is not None:
            return None
        values = _values(tenant, source_key, asker_id, question, topics, conversation_id, conversation_external_id,
                         thread_id, permalink, escalate_at, now)
        values["number"] = next_number(session, HelpRequest)
        if insert_ignore(session, HelpRequest, values):
            return by_source(session, source_key)
    raise RuntimeError("could not number a new help request")


def _values(tenant: str, source_key: str, asker_id: int, question: str, topics: Sequence[str], conversation_id: int | None,
            conversation_external_id: str, thread_id: str, permalink: str, escalate_at: datetime | None,
            now: datetime) -> dict[str, object]:
    return {
        "tenant": tenant, "source_key": source_key[:300], "asker_id": asker_id, "question": question,
        "topics": "|".join(t.replace("|", " ") for t in topics), "conversation_id": conversation_id, "conversation_external_id": conversation_external_id,
        "thread_id": thread_id, "permalink": permalink[:500], "status": "open", "answer": "",
        "escalate_at": escalate_at, "created_at": now,
    }


def by_number(session: Session, number: int, *, reader_id: int) -> HelpRequest | None:
    """Request `number`, or None when there is none `reader_id` may read (not even its existence shows)."""
    return session.scalar(select(HelpRequest).where(HelpRequest.number == number, request_readable_by(reader_id)))


def by_source(session: Session, source_key: str) -> HelpRequest | None:
    return session.scalar(select(HelpRequest).where(HelpRequest.source_key == source_key[:300]))


def routed_ids(session: Session, request_id: int) -> list[int]:
    return list(session.scalars(select(HelpRouting.person_id).where(HelpRouting.request_id == request_id).order_by(HelpRouting.id)))


def record_routing(session: Session, tenant: str, request_id: int, person_ids: Iterable[int], round_: int, now: datetime) -> None:
    for person_id in person_ids:
        insert_ignore(session, HelpRouting, {"tenant": tenant, "request_id": request_id, "person_id": person_id,
                                             "round": round_, "routed_at": now})


def weekly_load(session: Session, person_ids: Sequence[int], since: datetime) -> dict[int, int]:
    """Requests routed to each person since `since` (the weekly cap)."""
    if not person_ids:
        return {}
    rows = session.execute(
        select(HelpRouting.person_id, func.count(HelpRouting.id))
        .where(HelpRouting.person_id.in_(list(person_ids)), HelpRouting.routed_at >= since)
        .group_by(HelpRouting.person_id)
    )
    return {pid: n for pid, n in rows}


def last_routed(session: Session, person_ids: Sequence[int]) -> dict[int, datetime]:
    if not person_ids:
        return {}
    rows = session.execute(
        select(HelpRouting.person_id, func.max(HelpRouting.routed_at))
        .where(HelpRouting.person_id.in_(list(person_ids)))
        .group_by(HelpRouting.person_id)
    )
    return {pid: when for pid, when in rows if when is not None}


def similar_resolved(session: Session, question: str, topics: Sequence[str], *, reader_id: int, room_id: int | None = None,
                     limit: int = 3, exclude: int | None = None) -> list[HelpRequest]:
    """Resolved requests that look like this question, with their accepted answers.

    Shown in the room `room_id` (a channel or group chat), the answers must suit all its
    readers: only requests from public conversations qualify, plus those of that very room.
    Shown to `reader_id` alone (`room_id` None: a DM), requests whose answer they may read.
    """
    found: list[tuple[float, HelpRequest]] = []
    if room_id is not None:
        visible = _conversation_is(or_(Conversation.kind == "public", Conversation.id == room_id))
    else:
        visible = answer_readable_by(reader_id)
    recent = select(HelpRequest).where(HelpRequest.status == "resolved", HelpRequest.answer != "", visible)
    for row in session.scalars(recent.order_by(HelpRequest.resolved_at.desc()).limit(500)):
        if row.id == exclude:
            continue
        score = similarity(question, topics, row.question, [t for t in row.topics.split("|") if t])
        if score >= SIMILAR_THRESHOLD:
            found.append((score, row))
    found.sort(key=lambda pair: (-pair[0], -pair[1].number))
    return [row for _, row in found[:limit]]


def claim(session: Session, request_id: int, person_id: int, now: datetime) -> bool:
    """Open → claimed by `person_id`; False when someone else got there first."""
    result = session.execute(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.status == "open")
        .values(status="claimed", claimer_id=person_id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def resolve(session: Session, request_id: int, *, by: int, helper_id: int | None, answer: str, now: datetime) -> bool:
    result = session.execute(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.status != "resolved")
        .values(status="resolved", resolved_by=by, helper_id=helper_id, answer=answer, resolved_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def mark_answered(session: Session, conversation_external_id: str, thread_id: str, sender_id: int, now: datetime) -> int:
    """Someone other than the asker replied in the request's thread: it no longer needs escalating.

    The thread is the question's own (help channels, shortcuts) or, for a slash command, the
    bot's card, whose platform id the adapter recorded in `PostedMessage` (`help:<n>` anchor;
    Slack stores "channel|ts").
    """
    request_ids = list(session.scalars(select(HelpRequest.id).where(
        HelpRequest.conversation_external_id == conversation_external_id, HelpRequest.thread_id == thread_id)))
    anchor = session.scalar(select(PostedMessage.anchor).where(
        PostedMessage.conversation_external_id == conversation_external_id, PostedMessage.anchor.like("help:%"),
        or_(PostedMessage.message_ref == thread_id, PostedMessage.message_ref.like(f"%|{thread_id}"))).limit(1))
    number = anchor.partition(":")[2] if anchor else ""
    if number.isdigit():
        request_ids += list(session.scalars(select(HelpRequest.id).where(HelpRequest.number == int(number))))
    if not request_ids:
        return 0
    result = session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_(request_ids), HelpRequest.asker_id != sender_id, HelpRequest.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def due_escalations(session: Session, now: datetime, limit: int = 200) -> list[tuple[str, int]]:
    rows = session.execute(
        select(HelpRequest.tenant, HelpRequest.id)
        .where(
            HelpRequest.status == "open",
            HelpRequest.answered_at.is_(None),
            HelpRequest.escalated_at.is_(None),
            HelpRequest.escalate_at.is_not(None),
            HelpRequest.escalate_at <= now,
        )
        .order_by(HelpRequest.escalate_at)
        .limit(limit)
    )
    return [(tenant, rid) for tenant, rid in rows]


def claim_escalation(session: Session, request_id: int, now: datetime) -> bool:
    """Exactly one process escalates a request, once."""
    result = session.execute(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.escalated_at.is_(None), HelpRequest.status == "open",
               HelpRequest.answered_at.is_(None))
        .values(escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def open_requests(session: Session, reader_id: int, *, asker_id: int | None = None, limit: int = 10) -> list[HelpRequest]:
    """Unresolved requests `reader_id` may read (`request_readable_by`)."""
    query = select(HelpRequest).where(HelpRequest.status != "resolved", request_readable_by(reader_id))
    if asker_id is not None:
        query = query.where(HelpRequest.asker_id == asker_id)
    return list(session.scalars(query.order_by(HelpRequest.created_at.desc(), HelpRequest.number.desc()).limit(limit)))


# Away ------------------------------------------------------------------------
def away_ids(session: Session, now: datetime) -> set[int]:
    return set(session.scalars(select(ExpertAway.person_id).where(ExpertAway.until > now)))


def away_until(session: Session, person_id: int, now: datetime) -> datetime | None:
    return session.scalar(select(ExpertAway.until).where(ExpertAway.person_id == person_id, ExpertAway.until > now))


def set_away(session: Session, person_id: int, until: datetime, now: datetime) -> None:
    """One row per person: INSERT … ON CONFLICT DO NOTHING, then update, so `away` sent twice
    at once (a double submit, two processes) is no failure."""
    tenant = session.info.get("tenant")
    if tenant in (None, ALL_TENANTS):
        raise TenantError("an absence belongs to one workspace")
    if not insert_ignore(session, ExpertAway, {"tenant": tenant, "person_id": person_id, "until": until, "created_at": now}):
        row = session.scalar(select(ExpertAway).where(ExpertAway.person_id == person_id))
        assert row is not None
        row.until, row.created_at = until, now
    session.flush()


def clear_away(session: Session, person_id: int, now: datetime) -> bool:
    """Back early: True when the person was away."""
    was_away = away_until(session, person_id, now) is not None
    session.execute(delete(ExpertAway).where(ExpertAway.person_id == person_id))
    return was_away
