"""Digest queries: schedules, period claims, deliveries, and the reads a digest is built from.

Every content read goes through `store.visibility`: channel digests use `public_only()`,
personal digests `readable_by(person)`. Reads are capped (`limit`) and use the
`(tenant, conversation_id, sent_at)` index, so building one digest never loads a channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from store.idempotency import insert_ignore
from store.models.core import Conversation, ConversationMember, Person, PersonSkill, Skill
from store.models.digests import Digest, DigestDelivery, DigestRun
from store.models.social import Message, MessageMention, MessageTopic, Topic
from store.visibility import public_only, readable_by


@dataclass(frozen=True)
class MessageRow:
    id: int
    text: str
    permalink: str
    author: str
    conversation: str
    replies: int
    reactions: int
    sent_at: datetime


@dataclass(frozen=True)
class Newcomer:
    name: str
    skills: tuple[str, ...]


# Schedules -------------------------------------------------------------------
def channel_digests(session: Session, conversation_id: int, frequency: str) -> list[Digest]:
    """The channel digests of `conversation_id` on this rhythm (paused ones too), oldest first."""
    return list(session.scalars(select(Digest).where(Digest.kind == "channel", Digest.conversation_id == conversation_id,
                                                     Digest.frequency == frequency).order_by(Digest.id)))


def due(session: Session, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(digest id, tenant) of active digests whose next run has come, oldest first."""
    rows = session.execute(
        select(Digest.id, Digest.tenant)
        .where(Digest.status == "active", Digest.next_run_at.is_not(None), Digest.next_run_at <= now)
        .order_by(Digest.next_run_at, Digest.id)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


def advance(session: Session, digest_id: int, seen: datetime, following: datetime | None) -> bool:
    """Move `next_run_at` on, only if no other process did it first (conditional update)."""
    result = session.execute(
        update(Digest).where(Digest.id == digest_id, Digest.next_run_at == seen).values(next_run_at=following)
    )
    return bool(result.rowcount)


def claim_period(session: Session, digest: Digest, key: str, scheduled: datetime, start: datetime,
                 status: str, now: datetime) -> DigestRun | None:
    """Insert the (digest, period) row; None when another process or an earlier tick has it."""
    inserted = insert_ignore(session, DigestRun, {
        "tenant": digest.tenant, "digest_id": digest.id, "period_key": key, "scheduled_for": scheduled,
        "period_start": start, "status": status, "created_at": now,
    })
    if not inserted:
        return None
    return session.scalar(select(DigestRun).where(DigestRun.digest_id == digest.id, DigestRun.period_key == key))


def add_delivery(session: Session, run: DigestRun, target_key: str, payload: str, now: datetime) -> None:
    insert_ignore(session, DigestDelivery, {
        "tenant": run.tenant, "run_id": run.id, "target_key": target_key[:300], "payload": payload,
        "status": "pending", "attempts": 0, "created_at": now,
    })


def runs_of(session: Session, digest_id: int) -> list[DigestRun]:
    return list(session.scalars(select(DigestRun).where(DigestRun.digest_id == digest_id).order_by(DigestRun.id)))


# Deliveries ------------------------------------------------------------------
def claim_deliveries(session: Session, now: datetime, lease: timedelta, limit: int, max_attempts: int) -> list[DigestDelivery]:
    """Take up to `limit` deliveries to send now: pending ones (a failed attempt's row waits
    until its `lease_until`, the retry time), and "sending" ones whose lease ran out (their
    process died mid-delivery: the outcome of that attempt is unknown). PostgreSQL skips rows
    another worker has locked; on both backends the conditional update is what makes the claim
    exclusive. At most one per target per call, so one tick never bursts into a single channel."""
    ready = or_(and_(DigestDelivery.status == "pending",
                     or_(DigestDelivery.lease_until.is_(None), DigestDelivery.lease_until <= now)),
                and_(DigestDelivery.status == "sending", DigestDelivery.lease_until < now))
    query = (select(DigestDelivery.id, DigestDelivery.target_key)
             .where(ready, DigestDelivery.attempts < max_attempts).order_by(DigestDelivery.id).limit(limit * 4))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    picked: list[int] = []
    targets: set[str] = set()
    for delivery_id, target in session.execute(query):
        if target not in targets and len(picked) < limit:
            targets.add(target)
            picked.append(delivery_id)
    claimed: list[int] = []
    for delivery_id in picked:
        result = session.execute(
            update(DigestDelivery).where(DigestDelivery.id == delivery_id, ready)
            .values(status="sending", lease_until=now + lease, attempts=DigestDelivery.attempts + 1)
        )
        if result.rowcount:
            claimed.append(delivery_id)
    if not claimed:
        return []
    return list(session.scalars(select(DigestDelivery).where(DigestDelivery.id.in_(claimed)).order_by(DigestDelivery.id)))


def mark_sent(session: Session, delivery_id: int, now: datetime) -> None:
    session.execute(update(DigestDelivery).where(DigestDelivery.id == delivery_id, DigestDelivery.status == "sending")
                    .values(status="sent", sent_at=now, lease_until=None))


def retry_later(session: Session, delivery_id: int, at: datetime) -> None:
    """A failed attempt (the platform said 429/5xx, or could not be reached): pending again, not before `at`."""
    session.execute(update(DigestDelivery).where(DigestDelivery.id == delivery_id, DigestDelivery.status == "sending")
                    .values(status="pending", lease_until=at))


def give_up(session: Session, max_attempts: int, now: datetime) -> int:
    """Deliveries that failed `max_attempts` times stop being retried (not one being sent right now)."""
    result = session.execute(update(DigestDelivery).where(
        DigestDelivery.attempts >= max_attempts,
        or_(DigestDelivery.status == "pending",
            and_(DigestDelivery.status == "sending", DigestDelivery.lease_until < now))).values(status="failed"))
    return int(result.rowcount or 0)


# Content ---------------------------------------------------------------------
def _message_rows(session: Session, where: Sequence[ColumnElement[bool]], order: Sequence[object], limit: int) -> list[MessageRow]:
    query = (
        select(Message.id, Message.text, Message.permalink, Person.display_name, Person.handle, Conversation.name,
               Message.reply_count, Message.reaction_count, Message.sent_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Person, Person.id == Message.author_id)
        .where(Message.deleted.is_(False), *where)
        .order_by(*order)  # type: ignore[arg-type]
        .limit(limit)
    )
    return [MessageRow(r[0], r[1], r[2], r[3] or r[4] or "", r[5], r[6] or 0, r[7] or 0, r[8]) for r in session.execute(query)]


def _roots() -> ColumnElement[bool]:
    """Thread starters and plain messages, not the replies inside a thread."""
    return or_(Message.thread_external_id.is_(None), Message.thread_external_id == Message.external_id)


def top_discussions(session: Session, conversation_ids: Sequence[int], topic_keys: Sequence[str],
                    start: datetime, end: datetime, limit: int) -> list[MessageRow]:
    """The period's most discussed public messages (replies + reactions) from the given
    channels, plus public messages tagged with the given hashtags."""
    scope = [Message.conversation_id.in_(list(conversation_ids))] if conversation_ids else []
    if topic_keys:
        tagged = (select(MessageTopic.message_id).join(Topic, Topic.id == MessageTopic.topic_id)
                  .where(Topic.key.in_(list(topic_keys))))
        scope.append(Message.id.in_(tagged))
    if not scope:
        return []
    score = Message.reply_count + Message.reaction_count
    return _message_rows(session, [public_only(), or_(*scope), _roots(), Message.sent_at >= start, Message.sent_at < end],
                         [score.desc(), Message.sent_at.desc(), Message.id.desc()], limit)


def participation(session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime) -> int:
    """How many different people wrote in these public channels during the period."""
    if not conversation_ids:
        return 0
    return int(session.scalar(
        select(func.count(func.distinct(Message.author_id)))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(public_only(), Message.conversation_id.in_(list(conversation_ids)), Message.deleted.is_(False),
               Message.author_id.is_not(None), Message.sent_at >= start, Message.sent_at < end)
    ) or 0)


def member_count(session: Session, conversation: Conversation) -> int:
    if conversation.member_count:
        return conversation.member_count
    return int(session.scalar(select(func.count(ConversationMember.id))
                              .where(ConversationMember.conversation_id == conversation.id)) or 0)


def newcomers(session: Session, conversation: Conversation, start: datetime, end: datetime, limit: int,
              skills_each: int = 3) -> list[Newcomer]:
    """People who joined the channel during the period, with a few of their skills.

    Memberships recorded during the bot's first day in a channel are its initial view of who
    was already there, not arrivals: they are left out."""
    start = max(start, conversation.created_at + timedelta(days=1))
    conversation_id = conversation.id
    people = list(session.execute(
        select(Person.id, Person.display_name, Person.handle)
        .join(ConversationMember, ConversationMember.person_id == Person.id)
        .where(ConversationMember.conversation_id == conversation_id, ConversationMember.joined_at >= start,
               ConversationMember.joined_at < end, Person.is_bot.is_(False), Person.active.is_(True))
        .order_by(ConversationMember.joined_at, Person.id).limit(limit)
    ))
    if not people:
        return []
    skills: dict[int, list[str]] = {}
    for person_id, name in session.execute(
            select(PersonSkill.person_id, Skill.name).join(Skill, Skill.id == PersonSkill.skill_id)
            .where(PersonSkill.person_id.in_([p[0] for p in people]), PersonSkill.tenant == conversation.tenant)
            .order_by(PersonSkill.confirmed_at.desc(), Skill.name)):
        if len(skills.setdefault(person_id, [])) < skills_each:
            skills[person_id].append(name)
    return [Newcomer(p[1] or p[2], tuple(skills.get(p[0], ()))) for p in people]


def mentions_of(session: Session, person: Person, start: datetime, end: datetime, limit: int) -> list[MessageRow]:
    """Messages of the period that mention `person`, only where they may read them."""
    mentioned = select(MessageMention.message_id).where(MessageMention.person_id == person.id)
    return _message_rows(session, [readable_by(person.id), Message.id.in_(mentioned),
                                   or_(Message.author_id.is_(None), Message.author_id != person.id),
                                   Message.sent_at >= start, Message.sent_at < end],
                         [Message.sent_at.desc(), Message.id.desc()], limit)


def from_followed(session: Session, person: Person, author_ids: Sequence[int], topic_ids: Sequence[int],
                  start: datetime, end: datetime, limit: int) -> list[MessageRow]:
    """The period's messages by followed people or on followed topics, readable by `person`."""
    scope: list[ColumnElement[bool]] = []
    if author_ids:
        scope.append(Message.author_id.in_(list(author_ids)))
    if topic_ids:
        scope.append(Message.id.in_(select(MessageTopic.message_id).where(MessageTopic.topic_id.in_(list(topic_ids)))))
    if not scope:
        return []
    score = Message.reply_count + Message.reaction_count
    return _message_rows(session, [readable_by(person.id), or_(*scope), _roots(),
                                   or_(Message.author_id.is_(None), Message.author_id != person.id),
                                   Message.sent_at >= start, Message.sent_at < end],
                         [score.desc(), Message.sent_at.desc(), Message.id.desc()], limit)


def public_channels(session: Session, ids: Sequence[int]) -> list[Conversation]:
    if not ids:
        return []
    return list(session.scalars(select(Conversation).where(Conversation.id.in_(list(ids)), public_only())))


@dataclass(frozen=True)
class History:
    """What a digest did so far: its latest period and outcome, how many posts went out,
    and the payload of the latest post (for `digest list`)."""

    last_key: str
    last_status: str
    posts: int
    last_payload: str | None


def history(session: Session, digest_ids: Sequence[int]) -> dict[int, History]:
    if not digest_ids:
        return {}
    last: dict[int, tuple[str, str]] = {}
    manual: dict[int, int] = {}
    for digest_id, key, status in session.execute(
            select(DigestRun.digest_id, DigestRun.period_key, DigestRun.status)
            .where(DigestRun.digest_id.in_(list(digest_ids))).order_by(DigestRun.id)):
        last[digest_id] = (key, status)
        manual[digest_id] = manual.get(digest_id, 0) + (status == "manual")
    sent: dict[int, tuple[int, str]] = {}
    for digest_id, text in session.execute(
            select(DigestRun.digest_id, DigestDelivery.payload).join(DigestRun, DigestRun.id == DigestDelivery.run_id)
            .where(DigestRun.digest_id.in_(list(digest_ids)), DigestDelivery.status == "sent").order_by(DigestDelivery.id)):
        sent[digest_id] = (sent.get(digest_id, (0, ""))[0] + 1, text)
    return {d: History(key, status, sent.get(d, (0, ""))[0] + manual.get(d, 0), sent[d][1] if d in sent else None)
            for d, (key, status) in last.items()}
