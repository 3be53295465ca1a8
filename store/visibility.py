"""The privacy contract, enforced where the store is queried: who may read which conversation.

A public conversation is readable by everyone in the workspace; a private channel,
group chat or DM only by its members. Every read path that shows message content
(feed, topic cards, expertise "why" snippets, digests) filters with these clauses.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from store.models.core import Conversation, ConversationMember


def readable_by(person_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A clause on `Conversation`: true where `person_id` may read it. `person_id` may also
    be a column (e.g. `Person.id`), to filter many readers in one query."""
    member = exists(
        select(ConversationMember.id).where(
            ConversationMember.conversation_id == Conversation.id, ConversationMember.person_id == person_id
        )
    )
    return and_(Conversation.indexing, or_(Conversation.kind == "public", member))


def public_only() -> ColumnElement[bool]:
    """A clause on `Conversation`: public, indexed conversations (for audiences of many)."""
    return and_(Conversation.indexing, Conversation.kind == "public")


def readable_by_column(person_id: ColumnElement[int]) -> ColumnElement[bool]:
    """`readable_by` for a column of people (subscribers, digest recipients)."""
    return readable_by(person_id)


def can_read(session: Session, person_id: int, conversation_id: int) -> bool:
    """One check, for code that holds a conversation id rather than a query."""
    found = session.scalar(select(Conversation.id).where(Conversation.id == conversation_id, readable_by(person_id)))
    return found is not None
