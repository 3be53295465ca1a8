"""Ideas, votes, follows, campaigns and the workspace's ideas settings (queries only).

Privacy: every query that returns ideas (or counts them) takes the reader (`reader_id`) or
the conversation it is shown in (`shown_in`) and filters with `store.visibility`, so a handler
cannot forget it. An idea lives in the conversation its card is posted in (`conversation_id`):
a private channel's ideas are readable by its current members only; the author always reads
their own. Drafts (waiting while look-alikes are offered) are their author's only.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Iterable, Sequence

from rapidfuzz import fuzz
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.text import norm_key, topic_key
from store.db import ALL_TENANTS, TenantError
from store.idempotency import insert_ignore
from store.models.contribution import ContributionSetting, Idea, IdeaCampaign, IdeaFollow, IdeaTag, IdeaVote
from store.models.core import Conversation, Person
from store.visibility import SHARED_KINDS, contribution_readable_by, contribution_readable_in

STATUSES = ("new", "under_review", "accepted", "in_progress", "done", "declined")
OPEN_STATUSES = ("new", "under_review", "accepted", "in_progress")
DUPLICATE_THRESHOLD = 72.0
SIMILAR_SCAN = 2000  # the most recent ideas compared with a new one

# Words that carry no meaning for duplicate detection, in both languages.
_STOP = frozenset(
    "a an the of to for in on at and or with our we us more less better new un une des les le la l d de du "
    "pour par dans sur et ou avec nos notre plus moins meilleur meilleure nouveau nouvelle au aux en est faire make".split()
)


def tag_list(tags: str) -> list[str]:
    return [t for t in tags.split() if t]


def _words(text: str) -> list[str]:
    """Meaningful words, accent- and case-free, crude plural folding (FR/EN `s`/`x`)."""
    words = []
    for w in norm_key(text).split():
        if w in _STOP or len(w) < 2:
            continue
        if len(w) > 3 and w[-1] in "sx":
            w = w[:-1]
        words.append(w)
    return words


def similarity(title_a: str, tags_a: Iterable[str], title_b: str, tags_b: Iterable[str]) -> float:
    """0–100: fuzzy title match (word-set based, so word order and extra words matter little)
    plus a bonus for shared tags, which is what links a French and an English title."""
    a, b = " ".join(sorted(_words(title_a))), " ".join(sorted(_words(title_b)))
    # token_set alone calls "GDPR audit" a near-copy of "GDPR training"; token_sort tempers it.
    score = (fuzz.token_set_ratio(a, b) + fuzz.token_sort_ratio(a, b)) / 2 if a and b else 0.0
    if min(len(a.split()), len(b.split())) <= 1:
        score = min(score, fuzz.ratio(a, b))  # one shared word is not a duplicate by itself
    shared = {topic_key(t) for t in tags_a} & {topic_key(t) for t in tags_b}
    if shared:
        score = min(100.0, score + 25.0 * len(shared))
    return float(score)


def readable(reader_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A clause on `Idea`: published ideas `reader_id` may read, and the reader's own drafts."""
    published = and_(Idea.status != "draft", contribution_readable_by(Idea, reader_id))
    return or_(published, Idea.author_id == reader_id)


def is_shared(conversation: Conversation | None) -> bool:
    """Whether what is filed in `conversation` is for everyone (public channel, DM with the bot)."""
    return conversation is None or conversation.kind in SHARED_KINDS


def next_number(session: Session, model: type) -> int:
    """The next per-workspace number (the session's tenant scopes the query). Two concurrent
    writers may pick the same one: the (tenant, number) unique key stops the second, which retries."""
    return (session.scalar(select(func.max(model.number))) or 0) + 1  # type: ignore[attr-defined]


def create_idea(
    session: Session,
    *,
    title: str,
    details: str,
    tags: Sequence[str],
    author_id: int,
    anonymous: bool,
    status: str,
    now: datetime,
    conversation_id: int | None,
    source_permalink: str = "",
) -> Idea:
    """`conversation_id` is where it was typed; `publish` moves it to where its card goes."""
    idea = Idea(
        number=0,
        conversation_id=conversation_id,
        title=title,
        details=details,
        tags=" ".join(tags),
        author_id=author_id,
        anonymous=anonymous,
        status=status,
        source_permalink=source_permalink,
        created_at=now,
        updated_at=now,
    )
    for attempt in range(5):
        idea.number = next_number(session, Idea)
        savepoint = session.begin_nested()
        try:
            session.add(idea)
            session.flush()
            savepoint.commit()
            break
        except IntegrityError:
            savepoint.rollback()
            if attempt == 4:
                raise
    for key in dict.fromkeys(topic_key(t) for t in tags):
        if key:
            session.add(IdeaTag(idea_id=idea.id, key=key))
    session.flush()
    return idea


def get(session: Session, number: int, *, reader_id: int, drafts: bool = False) -> Idea | None:
    """By the number people see (#12), within the session's workspace. An idea `reader_id` may
    not read is None, exactly like a number that does not exist."""
    idea = session.scalar(select(Idea).where(Idea.number == number, readable(reader_id)))
    if idea is None or (idea.status == "draft" and not drafts):
        return None
    return idea


def submitted_since(session: Session, author_id: int, since: datetime) -> int:
    return session.scalar(
        select(func.count(Idea.id)).where(Idea.author_id == author_id, Idea.status != "draft", Idea.created_at >= since)
    ) or 0


def similar(
    session: Session,
    title: str,
    tags: Sequence[str],
    *,
    reader_id: int,
    limit: int = 3,
    exclude: int | None = None,
    topics_of: Callable[[str], Sequence[str]] | None = None,
) -> list[tuple[Idea, float]]:
    """Existing, published ideas `reader_id` may read that look like this one, best first.

    `topics_of(text)` names the known topics in a title (the expertise aliases know that
    "formation" is "training"): they count as shared tags, which links French and English.
    """
    def signals(text: str, own: Sequence[str]) -> list[str]:
        return [*own, *(topics_of(text) if topics_of else ())]

    mine = signals(title, tags)
    found: list[tuple[Idea, float]] = []
    recent = (select(Idea).where(Idea.status != "draft", readable(reader_id))
              .order_by(Idea.id.desc()).limit(SIMILAR_SCAN))
    for idea in session.scalars(recent):
        if idea.id == exclude:
            continue
        score = similarity(title, mine, idea.title, signals(idea.title, tag_list(idea.tags)))
        if score >= DUPLICATE_THRESHOLD:
            found.append((idea, score))
    found.sort(key=lambda pair: (-pair[1], -pair[0].vote_count, pair[0].number))
    return found[:limit]


def _bump_votes(session: Session, idea: Idea, delta: int) -> None:
    """Atomic in the database, so two people voting at once both count."""
    session.execute(update(Idea).where(Idea.id == idea.id).values(vote_count=Idea.vote_count + delta)
                    .execution_options(synchronize_session=False))
    session.refresh(idea, ["vote_count"])


def add_vote(session: Session, tenant: str, idea: Idea, person_id: int, now: datetime) -> bool:
    """One vote per person (a unique row); the author's own vote is refused by the caller."""
    inserted = insert_ignore(session, IdeaVote, {"tenant": tenant, "idea_id": idea.id, "person_id": person_id, "created_at": now})
    if inserted and person_id != idea.author_id:
        _bump_votes(session, idea, 1)
    return inserted


def remove_vote(session: Session, idea: Idea, person_id: int) -> bool:
    result = session.execute(delete(IdeaVote).where(IdeaVote.idea_id == idea.id, IdeaVote.person_id == person_id))
    if result.rowcount and person_id != idea.author_id:
        _bump_votes(session, idea, -1)
    return bool(result.rowcount)


def follow(session: Session, tenant: str, idea: Idea, person_id: int, now: datetime) -> bool:
    return insert_ignore(session, IdeaFollow, {"tenant": tenant, "idea_id": idea.id, "person_id": person_id, "created_at": now})


def unfollow(session: Session, idea: Idea, person_id: int) -> bool:
    result = session.execute(delete(IdeaFollow).where(IdeaFollow.idea_id == idea.id, IdeaFollow.person_id == person_id))
    return bool(result.rowcount)


def audience(session: Session, idea: Idea) -> list[int]:
    """Who hears about status changes: the author, voters and followers who may still read the
    idea (someone who left its private channel is not told). Ids, no duplicates."""
    ids = [idea.author_id]
    ids += list(session.scalars(select(IdeaVote.person_id).where(IdeaVote.idea_id == idea.id).order_by(IdeaVote.id)))
    ids += list(session.scalars(select(IdeaFollow.person_id).where(IdeaFollow.idea_id == idea.id).order_by(IdeaFollow.id)))
    allowed = set(session.scalars(select(Person.id).where(Person.id.in_(ids), Idea.id == idea.id, readable(Person.id))))
    return [pid for pid in dict.fromkeys(ids) if pid in allowed]


def listing(
    session: Session,
    mode: str,
    *,
    reader_id: int,
    tag: str | None = None,
    status: str | None = None,
    limit: int = 10,
) -> list[Idea]:
    """`top` (most votes, open first), `new`, `mine` (the reader's), `tag` or `status`:
    only ideas `reader_id` may read."""
    query = select(Idea).where(Idea.status != "draft", readable(reader_id))
    if mode == "mine":
        query = query.where(Idea.author_id == reader_id).order_by(Idea.created_at.desc(), Idea.number.desc())
    elif mode == "new":
        query = query.order_by(Idea.created_at.desc(), Idea.number.desc())
    elif mode == "tag":
        query = query.join(IdeaTag, IdeaTag.idea_id == Idea.id).where(IdeaTag.key == topic_key(tag or ""))
        query = query.order_by(Idea.vote_count.desc(), Idea.number.desc())
    elif mode == "status":
        query = query.where(Idea.status == status).order_by(Idea.vote_count.desc(), Idea.number.desc())
    else:
        query = query.where(Idea.status.in_(OPEN_STATUSES)).order_by(Idea.vote_count.desc(), Idea.created_at.desc(), Idea.number.desc())
    return list(session.scalars(query.limit(limit)))


# Campaigns -------------------------------------------------------------------
def create_campaign(
    session: Session, *, title: str, tags: Sequence[str], conversation_id: int | None, created_by: int, ends_at: datetime, now: datetime
) -> IdeaCampaign:
    campaign = IdeaCampaign(
        title=title, tags=" ".join(tags), conversation_id=conversation_id, created_by=created_by, created_at=now, ends_at=ends_at
    )
    session.add(campaign)
    session.flush()
    return campaign


def active_campaign_for(
    session: Session, tags: Sequence[str], now: datetime, *, source: Conversation | None
) -> IdeaCampaign | None:
    """The open campaign (soonest to end) sharing a tag with the idea, if any, among those the
    idea may join without changing who reads it: an idea typed in a private conversation joins
    only that conversation's campaigns; any other idea, only campaigns everyone may read."""
    keys = {topic_key(t) for t in tags}
    if not keys:
        return None
    if source is not None and not is_shared(source):
        scope = IdeaCampaign.conversation_id == source.id
    else:  # a campaign started in someone's DM with the bot is not a place for everyone's ideas
        in_public = select(Conversation.id).where(Conversation.id == IdeaCampaign.conversation_id, Conversation.kind == "public")
        scope = or_(IdeaCampaign.conversation_id.is_(None), in_public.exists())
    for campaign in session.scalars(
        select(IdeaCampaign).where(IdeaCampaign.ends_at > now, IdeaCampaign.created_at <= now, scope)
        .order_by(IdeaCampaign.ends_at, IdeaCampaign.id)
    ):
        if keys & {topic_key(t) for t in tag_list(campaign.tags)}:
            return campaign
    return None


def due_campaigns(session: Session, now: datetime) -> list[IdeaCampaign]:
    return list(
        session.scalars(
            select(IdeaCampaign)
            .where(IdeaCampaign.ends_at <= now, IdeaCampaign.summary_posted_at.is_(None))
            .order_by(IdeaCampaign.id)
        )
    )


def claim_summary(session: Session, campaign_id: int, now: datetime) -> bool:
    """Conditional update: exactly one process gets True for a campaign."""
    result = session.execute(
        update(IdeaCampaign)
        .where(IdeaCampaign.id == campaign_id, IdeaCampaign.summary_posted_at.is_(None))
        .values(summary_posted_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def campaign_ideas(session: Session, campaign_id: int, *, shown_in: Conversation | None, limit: int = 10) -> list[Idea]:
    """The campaign's best ideas that everyone reading `shown_in` may read."""
    return list(
        session.scalars(
            select(Idea)
            .where(Idea.campaign_id == campaign_id, Idea.status != "draft", contribution_readable_in(Idea, shown_in))
            .order_by(Idea.vote_count.desc(), Idea.number)
            .limit(limit)
        )
    )


def campaign_count(session: Session, campaign_id: int, *, shown_in: Conversation | None) -> int:
    """How many of the campaign's ideas everyone reading `shown_in` may read."""
    return session.scalar(
        select(func.count(Idea.id))
        .where(Idea.campaign_id == campaign_id, Idea.status != "draft", contribution_readable_in(Idea, shown_in))
    ) or 0


# Settings --------------------------------------------------------------------
def get_setting(session: Session, name: str) -> str | None:
    return session.scalar(select(ContributionSetting.value).where(ContributionSetting.name == name))


def set_setting(session: Session, name: str, value: str, by: int, now: datetime) -> None:
    """Set a workspace setting. INSERT … ON CONFLICT DO NOTHING, then update: two admins
    setting it for the first time at once end with one row (the later value), no failure."""
    tenant = session.info.get("tenant")
    if tenant in (None, ALL_TENANTS):
        raise TenantError("a setting belongs to one workspace")
    values = {"tenant": tenant, "name": name, "value": value, "updated_by": by, "updated_at": now}
    if not insert_ignore(session, ContributionSetting, values):
        row = session.scalar(select(ContributionSetting).where(ContributionSetting.name == name))
        assert row is not None
        row.value, row.updated_by, row.updated_at = value, by, now
    session.flush()


_ID = re.compile(r"^#?(\d{1,9})\b")


def parse_id(text: str) -> tuple[int | None, str]:
    """A leading idea/request number (`12` or `#12`) and the rest of the text."""
    m = _ID.match(text.strip())
    if not m:
        return None, text.strip()
    return int(m.group(1)), text.strip()[m.end():].strip()
