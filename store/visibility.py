"""The privacy contract, enforced where the store is queried: who may read which conversation.

A public conversation is readable by everyone in the workspace; a private channel,
group chat or DM only by its members. Every read path that shows message content
(feed, topic cards, expertise "why" snippets, digests) filters with these clauses.

Contribution rows (ideas, kudos, help requests) carry the `conversation_id` they were filed
in and are filtered with `contribution_readable_by` / `public_contribution` /
`contribution_readable_in` (see the rule above those functions).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

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


# Contributions (ideas, kudos, help requests...) -------------------------------------------
# Rows that carry a nullable `conversation_id`: the conversation they were filed in.
#
# - NULL (filed outside any conversation, e.g. by a job): readable by everyone in the workspace.
# - A public channel: everyone. A DM (kind "dm"): everyone too — the bot only sees DMs with
#   itself, so what someone files there (an idea, a thank-you) is addressed to the feature's
#   shared space (the ideas box, the leaderboard), not to a person.
# - A private channel or group chat: its current members only, so removing someone from the
#   channel (or making it private) hides its contributions from them at once.
#
# Unlike `readable_by`, the channel's `indexing` switch does not apply: it governs what the bot
# picks up from conversation on its own, whereas a contribution is a command addressed to it.
SHARED_KINDS = ("public", "dm")  # conversation kinds whose contributions everyone reads


def _is_member(conversation_id: ColumnElement[int | None], person_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    return exists(
        select(ConversationMember.id).where(
            ConversationMember.conversation_id == conversation_id, ConversationMember.person_id == person_id
        ).correlate_except(ConversationMember)
    )


def _shared(model: Any) -> ColumnElement[bool]:
    """The row's conversation is one everybody reads (correlated to any enclosing level)."""
    return exists(
        select(Conversation.id)
        .where(Conversation.id == model.conversation_id, Conversation.kind.in_(SHARED_KINDS))
        .correlate_except(Conversation)
    )


def contribution_readable_by(model: Any, person_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A clause on `model` (any mapped class with a `conversation_id` column): true where
    `person_id` may read the row. `person_id` may be a column, to filter many readers at once.

    Use it in every query that returns contribution rows or counts them for a reader, e.g.
    `select(Idea).where(contribution_readable_by(Idea, reader_id))`.
    """
    shared = _shared(model)
    return or_(model.conversation_id.is_(None), shared, _is_member(model.conversation_id, person_id))


def public_contribution(model: Any) -> ColumnElement[bool]:
    """A clause on `model`: rows readable by everyone (for audiences of many: a public channel's
    digest, a summary posted in a public channel, a public total)."""
    shared = _shared(model)
    return or_(model.conversation_id.is_(None), shared)


def contribution_readable_in(model: Any, conversation: Conversation | None) -> ColumnElement[bool]:
    """A clause on `model`: rows that may be shown IN `conversation`, i.e. readable by everyone
    who reads it. A public channel or a DM (or none): public rows only. A private channel or
    group chat: public rows, its own rows, and rows every one of its current members may read
    (a channel whose members are unknown gets nothing beyond its own and public rows)."""
    if conversation is None or conversation.kind in SHARED_KINDS:
        return public_contribution(model)
    reader = aliased(ConversationMember)
    members = select(reader.id).where(reader.conversation_id == conversation.id)
    somebody = exists(members)
    everybody = ~exists(members.where(~contribution_readable_by(model, reader.person_id)))
    return or_(public_contribution(model), model.conversation_id == conversation.id, and_(somebody, everybody))


def contribution_shown(model: Any, *, reader_id: int, shown_in: Conversation | None) -> ColumnElement[bool]:
    """A clause on `model`: rows a reply that `reader_id` asked for may show when it is posted
    in `shown_in` for all to see. In a DM (or nowhere) only the reader sees it: what they may
    read. In a channel: what everyone reading that channel may read, and the reader too. (A
    reply shown to the reader alone, e.g. ephemeral, uses `contribution_readable_by`.)"""
    if shown_in is None or shown_in.kind == "dm":
        return contribution_readable_by(model, reader_id)
    return and_(contribution_readable_in(model, shown_in), contribution_readable_by(model, reader_id))
