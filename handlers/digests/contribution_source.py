"""Ideas, help requests and kudos for channel digests, read from `store.models.contribution`.

A channel digest is posted in a public channel for everyone: the caller passes public
channels only, and every read here is restricted to them and, on top, to rows everyone may
read (`store.visibility.public_contribution`), so an idea posted, a question asked or a
thank-you given in a private conversation never shows, even if a caller passed its id.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from handlers.digests.sources import Entry
from bot.text import shorten, strip_markers
from store.models.contribution import HelpRequest, Idea, IdeaVote, Kudos
from store.models.core import Person
from store.visibility import public_contribution

TEXT_CHARS = 160


class StoreContributions:
    def ideas(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        """New ideas of the period and older ones that got votes in it, most voted first."""
        if not conversation_ids:
            return []
        channel_ideas = select(Idea.id).where(Idea.conversation_id.in_(list(conversation_ids)), public_contribution(Idea))
        recent_votes = (select(IdeaVote.idea_id, func.count(IdeaVote.id).label("n"))
                        .where(IdeaVote.idea_id.in_(channel_ideas), IdeaVote.created_at >= start, IdeaVote.created_at < end)
                        .group_by(IdeaVote.idea_id).subquery())
        rows = session.execute(
            select(Idea.number, Idea.title, Idea.anonymous, Idea.source_permalink, Idea.vote_count,
                   Person.display_name, Person.handle)
            .outerjoin(recent_votes, recent_votes.c.idea_id == Idea.id)
            .outerjoin(Person, Person.id == Idea.author_id)
            .where(Idea.conversation_id.in_(list(conversation_ids)), public_contribution(Idea), Idea.status != "draft",
                   or_(Idea.created_at >= start, recent_votes.c.n > 0), Idea.created_at < end)
            .order_by(func.coalesce(recent_votes.c.n, 0).desc(), Idea.vote_count.desc(), Idea.number.desc())
            .limit(limit)
        )
        return [Entry(shorten(f"#{number} {strip_markers(title)}", TEXT_CHARS), "" if anonymous else (name or handle or ""),
                      link=link, votes=votes)
                for number, title, anonymous, link, votes, name, handle in rows]

    def open_help(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        """Questions of the period nobody has answered yet: the call to action."""
        if not conversation_ids:
            return []
        rows = session.execute(
            select(HelpRequest.question, HelpRequest.permalink, Person.display_name, Person.handle)
            .outerjoin(Person, Person.id == HelpRequest.asker_id)
            .where(HelpRequest.conversation_id.in_(list(conversation_ids)), public_contribution(HelpRequest),
                   HelpRequest.status == "open",
                   HelpRequest.answered_at.is_(None), HelpRequest.created_at >= start, HelpRequest.created_at < end)
            .order_by(HelpRequest.created_at).limit(limit)
        )
        return [Entry(shorten(strip_markers(question), TEXT_CHARS), name or handle or "", link=link)
                for question, link, name, handle in rows]

    def kudos(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        if not conversation_ids:
            return []
        giver, recipient = aliased(Person), aliased(Person)
        rows = session.execute(
            select(Kudos.reason, giver.display_name, giver.handle, recipient.display_name, recipient.handle)
            .join(giver, giver.id == Kudos.giver_id).join(recipient, recipient.id == Kudos.recipient_id)
            .where(Kudos.conversation_id.in_(list(conversation_ids)), public_contribution(Kudos),
                   Kudos.created_at >= start, Kudos.created_at < end)
            .order_by(Kudos.created_at.desc()).limit(limit)
        )
        return [Entry(shorten(strip_markers(reason), TEXT_CHARS), g_name or g_handle, detail=r_name or r_handle)
                for reason, g_name, g_handle, r_name, r_handle in rows]
