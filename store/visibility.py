"""The privacy contract, enforced where the store is queried: who may read which conversation.

A public conversation is readable by everyone in the workspace; a private channel,
group chat or DM only by its members. Every read path that shows message content
(feed, topic cards, expertise "why" snippets, digests) filters with these clauses.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select

from store.models.core import Conversation, ConversationMember


def readable_by(person_id: int) -> ColumnElement[bool]:
    """A clause on `Conversation`: true where `person_id` may read it."""
    member = exists(
        select(ConversationMember.id).where(
            ConversationMember.conversation_id == Conversation.id, ConversationMember.person_id == person_id
        )
    )
    return and_(Conversation.indexing, or_(Conversation.kind == "public", member))


def public_only() -> ColumnElement[bool]:
    """A clause on `Conversation`: public, indexed conversations (for audiences of many)."""
    return and_(Conversation.indexing, Conversation.kind == "public")
