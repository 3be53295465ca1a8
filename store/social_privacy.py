"""Personal data: export everything stored about a person, erase it for good, stop indexing
a person or a channel, and purge message snippets past the retention period."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.text import mention_marker
from store import contribution_export, evidence_log
from store import notifications as notification_store
from store.idempotency import insert_ignore
from store.models.core import (
    Conversation,
    ConversationMember,
    Evidence,
    Person,
    PersonSkill,
    Role,
    Skill,
)
from store.models.analytics import ActivityDay, FirstContribution
from store.models.social import Follow, IndexOptOut, Message, MessageMention, MessageTopic, Topic
from store.social import INDEX_KINDS, source_ref
from store.visibility import readable_by

PROFILE_FIELDS = ("external_id", "handle", "display_name", "email", "title", "department", "site", "tz",
                  "languages", "locale", "avatar_url")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_person(session: Session, person: Person) -> dict[str, Any]:
    """Everything stored about `person`, as JSON-ready data. Content from conversations the
    person may not read (someone mentioned them in a private channel) is counted, not shown."""
    data: dict[str, Any] = {"profile": {f: getattr(person, f) for f in PROFILE_FIELDS}}
    data["profile"]["created_at"] = _iso(person.created_at)
    data["indexing_opt_out"] = session.scalar(select(IndexOptOut.id).where(IndexOptOut.person_id == person.id)) is not None
    tags: dict[int, list[str]] = {}
    for mid, label in session.execute(
        select(MessageTopic.message_id, Topic.label).join(Topic, Topic.id == MessageTopic.topic_id)
        .join(Message, Message.id == MessageTopic.message_id).where(Message.author_id == person.id)
    ):
        tags.setdefault(mid, []).append(label)
    data["messages"] = [
        {"conversation": c.name, "sent_at": _iso(m.sent_at), "text": m.text, "permalink": m.permalink,
         "hashtags": tags.get(m.id, []), "replies": m.reply_count, "reactions": m.reaction_count}
        for m, c in session.execute(
            select(Message, Conversation).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.author_id == person.id, Message.deleted.is_(False)).order_by(Message.sent_at)
        )
    ]
    data["mentioned_in"] = [
        {"conversation": c.name, "sent_at": _iso(m.sent_at), "permalink": m.permalink}
        for m, c in session.execute(
            select(Message, Conversation).join(MessageMention, MessageMention.message_id == Message.id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(MessageMention.person_id == person.id, readable_by(person.id)).order_by(Message.sent_at)
        )
    ]
    data["following"] = [
        {"person": p.display_name if p else None, "topic": t.label if t else None, "level": f.level,
         "since": _iso(f.created_at)}
        for f, p, t in session.execute(
            select(Follow, Person, Topic).outerjoin(Person, Person.id == Follow.person_id)
            .outerjoin(Topic, Topic.id == Follow.topic_id).where(Follow.follower_id == person.id)
        )
    ]
    data["followers"] = [
        {"person": p.display_name, "level": level}
        for p, level in session.execute(
            select(Person, Follow.level).join(Follow, Follow.follower_id == Person.id).where(Follow.person_id == person.id)
        )
    ]
    evidence = session.execute(
        select(Evidence, Conversation).outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.person_id == person.id).order_by(Evidence.occurred_at)
    ).all()
    readable = set(session.scalars(select(Conversation.id).where(readable_by(person.id))))
    data["expertise_evidence"] = [
        {"topic": e.topic_label, "kind": e.kind, "weight": e.weight, "at": _iso(e.occurred_at),
         "conversation": c.name if c else None, "snippet": e.snippet}
        for e, c in evidence if e.conversation_id is None or e.conversation_id in readable
    ]
    data["expertise_evidence_from_conversations_you_cannot_read"] = sum(
        1 for e, _ in evidence if e.conversation_id is not None and e.conversation_id not in readable)
    data["skills"] = [
        {"skill": s.name, "source": ps.source, "confirmed_at": _iso(ps.confirmed_at)}
        for s, ps in session.execute(
            select(Skill, PersonSkill).join(PersonSkill, PersonSkill.skill_id == Skill.id)
            .where(PersonSkill.person_id == person.id)
        )
    ]
    data["roles"] = [
        {"role": r.role, "conversation": c.name if c else None}
        for r, c in session.execute(
            select(Role, Conversation).outerjoin(Conversation, Conversation.id == Role.conversation_id)
            .where(Role.person_id == person.id)
        )
    ]
    data["conversations"] = sorted(session.scalars(
        select(Conversation.name).join(ConversationMember, ConversationMember.conversation_id == Conversation.id)
        .where(ConversationMember.person_id == person.id)
    ))
    data.update(notification_store.export_person(session, person.id))
    data.update(contribution_export.export_person(session, person.id))
    return data


def forget_person(session: Session, person: Person) -> None:
    """Erase a person for good. Their row goes, and with it (foreign-key cascades) their
    messages, mentions, follows both ways, evidence, skills, roles, memberships, pings and
    settings; their mention markers in other people's messages become an anonymous "@…"."""
    marker = mention_marker(person.external_id)
    session.execute(
        update(Message).where(Message.text.contains(marker, autoescape=True))
        .values(text=func.replace(Message.text, marker, "@…")).execution_options(synchronize_session=False)
    )
    session.execute(
        update(Evidence).where(Evidence.snippet.contains(marker, autoescape=True))
        .values(snippet=func.replace(Evidence.snippet, marker, "@…")).execution_options(synchronize_session=False)
    )
    # Explicit deletes for our own tables (cascades would do it; this keeps SQLite without
    # foreign keys and the ORM's identity map honest).
    session.execute(delete(MessageMention).where(MessageMention.person_id == person.id))
    session.execute(delete(Message).where(Message.author_id == person.id))
    session.execute(delete(Follow).where(or_(Follow.follower_id == person.id, Follow.person_id == person.id)))
    evidence_log.delete_evidence(session, Evidence.person_id == person.id)
    session.execute(delete(PersonSkill).where(PersonSkill.person_id == person.id))
    session.execute(delete(IndexOptOut).where(IndexOptOut.person_id == person.id))
    notification_store.forget_person(session, person.id)
    _detach_activity(session, person.id)
    session.delete(person)
    session.flush()


def _detach_activity(session: Session, person_id: int) -> None:
    """Analytics keep a forgotten person's counts (an organisation's past figures do not move)
    but no longer under their id: SQLite may give that id to the next person, who must not
    inherit `stats me`. The rows move to a tombstone id of their own (negative, unused)."""
    tomb = -person_id
    taken = session.scalar(select(func.count()).select_from(ActivityDay).where(ActivityDay.person_id == tomb)) or \
        session.scalar(select(func.count()).select_from(FirstContribution).where(FirstContribution.person_id == tomb))
    if taken:  # that id was forgotten before, by someone who had it first
        lowest = min(session.scalar(select(func.min(ActivityDay.person_id))) or 0,
                     session.scalar(select(func.min(FirstContribution.person_id))) or 0)
        tomb = min(lowest, 0) - 1
    for model in (ActivityDay, FirstContribution):
        session.execute(update(model).where(model.person_id == person_id).values(person_id=tomb)
                        .execution_options(synchronize_session=False))


def set_person_indexing(session: Session, tenant: str, person: Person, on: bool, now: datetime) -> int:
    """`privacy me off` stops indexing and removes what was indexed; returns messages removed."""
    if on:
        session.execute(delete(IndexOptOut).where(IndexOptOut.person_id == person.id))
        return 0
    insert_ignore(session, IndexOptOut, {"tenant": tenant, "person_id": person.id, "created_at": now})
    return _drop_messages(session, Message.author_id == person.id)


def set_channel_indexing(session: Session, conversation: Conversation, on: bool) -> int:
    """`privacy channel off` stops indexing a channel and removes its indexed messages."""
    conversation.indexing = on
    if on:
        return 0
    return _drop_messages(session, Message.conversation_id == conversation.id, conversation_id=conversation.id)


def _drop_messages(session: Session, where: Any, conversation_id: int | None = None) -> int:
    pairs = session.execute(select(Message.conversation_id, Message.external_id).where(where)).all()
    refs = [source_ref(c, e) for c, e in pairs]
    for start in range(0, len(refs), 500):
        evidence_log.delete_evidence(session, Evidence.kind.in_(INDEX_KINDS), Evidence.source_ref.in_(refs[start:start + 500]))
    ids = select(Message.id).where(where)
    session.execute(delete(MessageTopic).where(MessageTopic.message_id.in_(ids)).execution_options(synchronize_session=False))
    session.execute(delete(MessageMention).where(MessageMention.message_id.in_(ids)).execution_options(synchronize_session=False))
    result = session.execute(delete(Message).where(where).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def purge_older_than(session: Session, cutoff: datetime) -> tuple[int, int]:
    """Retention: delete indexed messages sent before `cutoff` and blank the snippets of
    evidence drawn from them (the evidence itself keeps feeding expertise, with decay)."""
    old = Message.sent_at < cutoff
    ids = select(Message.id).where(old)
    session.execute(delete(MessageTopic).where(MessageTopic.message_id.in_(ids)).execution_options(synchronize_session=False))
    session.execute(delete(MessageMention).where(MessageMention.message_id.in_(ids)).execution_options(synchronize_session=False))
    messages = session.execute(delete(Message).where(old).execution_options(synchronize_session=False)).rowcount or 0
    snippets = session.execute(
        update(Evidence).where(Evidence.kind.in_(INDEX_KINDS), Evidence.occurred_at < cutoff, Evidence.snippet != "")
        .values(snippet="").execution_options(synchronize_session=False)
    ).rowcount or 0
    return int(messages), int(snippets)
