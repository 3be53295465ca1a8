"""The contribution loop's part of "export my data": ideas, votes, help requests, kudos, absences.

Erasure needs no code here: every contribution row references the person with
ON DELETE CASCADE (or SET NULL for claimer/helper), so `forget me` removes them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from store import help_requests
from store.models.contribution import ExpertAway, HelpRequest, HelpRouting, Idea, IdeaFollow, IdeaVote, Kudos
from store.ideas import readable
from store.models.core import Person


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_person(session: Session, person_id: int) -> dict[str, Any]:
    pid = person_id
    ideas = [
        {"number": i.number, "title": i.title, "details": i.details, "tags": i.tags, "anonymous": i.anonymous,
         "status": i.status, "votes": i.vote_count, "created_at": _iso(i.created_at)}
        for i in session.scalars(select(Idea).where(Idea.author_id == pid, Idea.status != "draft").order_by(Idea.created_at))
    ]
    # A vote is the person's own, the idea's title is not: blank where they may no longer read it.
    votes = [
        {"idea": n, "title": t if ok else "", "at": _iso(at)}
        for n, t, ok, at in session.execute(select(Idea.number, Idea.title, readable(pid), IdeaVote.created_at)
                                            .join(IdeaVote, IdeaVote.idea_id == Idea.id).where(IdeaVote.person_id == pid))
    ]
    followed_ideas = sorted(session.scalars(select(Idea.number).join(IdeaFollow, IdeaFollow.idea_id == Idea.id)
                                            .where(IdeaFollow.person_id == pid)))
    # Requests the person asked, took, solved or was asked to help with; the privacy contract
    # still applies: those they may not read are counted, not shown.
    theirs = or_(HelpRequest.asker_id == pid, HelpRequest.claimer_id == pid, HelpRequest.helper_id == pid,
                 HelpRequest.id.in_(select(HelpRouting.request_id).where(HelpRouting.person_id == pid)))
    requests = [
        {"number": r.number, "question": r.question, "topics": r.topics, "status": r.status,
         "role": "asker" if r.asker_id == pid else "helper" if r.helper_id == pid else "claimer" if r.claimer_id == pid
         else "asked",
         "answer": r.answer if r.asker_id == pid or r.helper_id == pid else "", "created_at": _iso(r.created_at)}
        for r in session.scalars(select(HelpRequest).where(theirs, help_requests.request_readable_by(pid))
                                 .order_by(HelpRequest.created_at))
    ]
    hidden = session.scalar(select(func.count(HelpRequest.id)).where(theirs, ~help_requests.request_readable_by(pid)))
    other = aliased(Person)
    given = [
        {"to": name, "reason": k.reason, "skills": k.skills, "at": _iso(k.created_at)}
        for k, name in session.execute(select(Kudos, other.display_name).join(other, other.id == Kudos.recipient_id)
                                       .where(Kudos.giver_id == pid).order_by(Kudos.created_at))
    ]
    received = [
        {"from": name, "reason": k.reason, "skills": k.skills, "at": _iso(k.created_at)}
        for k, name in session.execute(select(Kudos, other.display_name).join(other, other.id == Kudos.giver_id)
                                       .where(Kudos.recipient_id == pid).order_by(Kudos.created_at))
    ]
    away = session.scalar(select(ExpertAway.until).where(ExpertAway.person_id == pid))
    return {"ideas": ideas, "idea_votes": votes, "ideas_followed": followed_ideas, "help_requests": requests,
            "help_requests_not_shown": hidden or 0, "kudos_given": given, "kudos_received": received, "away_until": _iso(away)}
