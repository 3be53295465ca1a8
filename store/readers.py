"""Readers of messages (store/models/readers.py): written from read receipts, read by
analytics. A receipt is recorded once per (conversation, message, person); a receipt says
the person read the conversation up to that message, so everything posted in it before
`read_at` was in front of them."""
from __future__ import annotations

from datetime import datetime

from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from store.idempotency import insert_ignore
from store.models.core import ConversationMember, Person
from store.models.readers import MessageRead


def record(session: Session, tenant: str, conversation_id: int, message_external_id: str, person_id: int,
           read_at: datetime) -> bool:
    """The person read the conversation up to that message; False when already recorded."""
    return insert_ignore(session, MessageRead, {"tenant": tenant, "conversation_id": conversation_id,
                                                "message_external_id": message_external_id[:200],
                                                "person_id": person_id, "read_at": read_at})


def readers_of(session: Session, conversation_id: int, message_external_id: str) -> int:
    """How many people sent a receipt for exactly that message."""
    return int(session.scalar(select(func.count(func.distinct(MessageRead.person_id))).where(
        MessageRead.conversation_id == conversation_id, MessageRead.message_external_id == message_external_id[:200])) or 0)


def readers_since(session: Session, conversation_id: int, since: datetime) -> int:
    """How many people read the conversation at least once since `since` (a real readers count)."""
    return int(session.scalar(select(func.count(func.distinct(MessageRead.person_id))).where(
        MessageRead.conversation_id == conversation_id, MessageRead.read_at >= since)) or 0)


def measured(session: Session, conversation_id: int) -> bool:
    """Whether the conversation's messenger tells who reads (any receipt ever recorded there)."""
    return bool(session.scalar(select(exists().where(MessageRead.conversation_id == conversation_id))))


def member_readers(session: Session, conversation_id: int, since: datetime, until: datetime, who: Any) -> int:
    """How many of the conversation's members read it at least once in [since, until): people
    the condition `who` (on Person: analytics' `counts_as_member`) counts, each once."""
    return int(session.scalar(
        select(func.count(func.distinct(MessageRead.person_id)))
        .join(Person, Person.id == MessageRead.person_id)
        .join(ConversationMember, (ConversationMember.person_id == MessageRead.person_id)
              & (ConversationMember.conversation_id == MessageRead.conversation_id))
        .where(MessageRead.conversation_id == conversation_id, MessageRead.read_at >= since,
               MessageRead.read_at < until, who)) or 0)
