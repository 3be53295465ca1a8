"""Ideas, help requests and kudos for channel digests, read from `store.models.contribution`.

The caller passes public channels only; every read here is restricted to them, so an idea
posted, a question asked or a thank-you given in a private conversation never shows.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from bot.digests.sources import Entry
from bot.text import shorten, strip_markers
from store.models.contribution import HelpRequest, Idea, IdeaVote, Kudos
from store.models.core import Person

TEXT_CHARS = 160


def _name(person: Person | None) -> str:
    return (person.display_name or person.handle) if person is not None else ""


class StoreContributions:
    def ideas(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        """New ideas of the period and older ones that got votes in it, most voted first."""
        if not conversation_ids:
            return []
        recent_votes = (select(IdeaVote.idea_id, func.count(IdeaVote.id).label("n"))
                        .where(IdeaVote.created_at >= start, IdeaVote.created_at < end).group_by(IdeaVote.idea_id).subquery())
        rows = session.execute(
            select(Idea, Person, func.coalesce(recent_votes.c.n, 0))
            .outerjoin(recent_votes, recent_votes.c.idea_id == Idea.id)
            .outerjoin(Person, Person.id == Idea.author_id)
            .where(Idea.conversation_id.in_(list(conversation_ids)), Idea.status != "draft",
                   or_(Idea.created_at >= start, recent_votes.c.n > 0), Idea.created_at < end)
            .order_by(func.coalesce(recent_votes.c.n, 0).desc(), Idea.vote_count.desc(), Idea.number.desc())
            .limit(limit)
        )
        return [Entry(shorten(f"#{idea.number} {strip_markers(idea.title)}", TEXT_CHARS),
                      "" if idea.anonymous else _name(author), link=idea.source_permalink, votes=idea.vote_count)
                for idea, author, _ in rows]

    def open_help(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        """Questions of the period nobody has answered yet: the call to action."""
        if not conversation_ids:
            return []
        rows = session.execute(
            select(HelpRequest, Person).outerjoin(Person, Person.id == HelpRequest.asker_id)
            .where(HelpRequest.conversation_id.in_(list(conversation_ids)), HelpRequest.status == "open",
                   HelpRequest.answered_at.is_(None), HelpRequest.created_at >= start, HelpRequest.created_at < end)
            .order_by(HelpRequest.created_at).limit(limit)
        )
        return [Entry(shorten(strip_markers(req.question), TEXT_CHARS), _name(asker), link=req.permalink) for req, asker in rows]

    def kudos(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        if not conversation_ids:
            return []
        giver, recipient = aliased(Person), aliased(Person)
        rows = session.execute(
            select(Kudos, giver, recipient).join(giver, giver.id == Kudos.giver_id).join(recipient, recipient.id == Kudos.recipient_id)
            .where(Kudos.conversation_id.in_(list(conversation_ids)), Kudos.created_at >= start, Kudos.created_at < end)
            .order_by(Kudos.created_at.desc()).limit(limit)
        )
        return [Entry(shorten(strip_markers(k.reason), TEXT_CHARS), _name(g), detail=_name(r)) for k, g, r in rows]
