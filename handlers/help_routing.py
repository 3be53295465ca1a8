"""Choosing experts for a help request, and the working-hours clock of escalations.

Protecting experts is the point: the asker, people away and people who already got
`settings.expert_weekly_cap` requests this week are skipped, and among equally qualified
experts the one routed least recently comes first, so the same person is not always asked.

A request from a private conversation is routed inside it only (`audience`, its members):
the expertise ranking knows no audience, so it is searched deeper, page after page, until
enough members are found or `AUDIENCE_SCAN` people were considered.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Collection, Sequence
from zoneinfo import ZoneInfo

from bot.context import Ctx
from handlers.expertise.lookup import Candidate, find_experts, topics_in
from bot.text import extract_hashtags, topic_key
from store import help_requests as store

DAY_START = time(9, 0)
DAY_END = time(18, 0)
WEEK = timedelta(days=7)
AUDIENCE_SCAN = 2000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def add_working_hours(start: datetime, hours: float, tz: ZoneInfo) -> datetime:
    """`start` plus `hours` counted only Monday–Friday, 09:00–18:00 in `tz` (returned in UTC)."""
    remaining = timedelta(hours=hours)
    t = start.astimezone(tz)
    while True:
        day = t.date()
        opening = datetime.combine(day, DAY_START, tzinfo=tz)
        closing = datetime.combine(day, DAY_END, tzinfo=tz)
        if t.weekday() >= 5 or t >= closing:
            t = datetime.combine(day + timedelta(days=1), DAY_START, tzinfo=tz)
            continue
        if t < opening:
            t = opening
        available = closing - t
        if remaining <= available:
            return (t + remaining).astimezone(timezone.utc)
        remaining -= available
        t = datetime.combine(day + timedelta(days=1), DAY_START, tzinfo=tz)


def detect_topics(ctx: Ctx, question: str, hashtags: Sequence[str] = ()) -> list[str]:
    """The request's topics: its #hashtags first, then known skills named in the text."""
    found: dict[str, str] = {}
    for label in [*hashtags, *extract_hashtags(question), *topics_in(ctx, question)]:
        key = topic_key(label)
        if key and key not in found:
            found[key] = label.lstrip("#")
    return list(found.values())[:5]


def pick_experts(ctx: Ctx, question: str, topics: Sequence[str], *, exclude: Collection[int], count: int = 3,
                 audience: Collection[int] | None = None) -> list[Candidate]:
    """Up to `count` available experts, best first, rotating among equals; only people in
    `audience` when one is given (None: anyone)."""
    query = " ".join(topics) if topics else question
    if not query.strip():
        return []
    now = ctx.now()
    skip = set(exclude) | store.away_ids(ctx.session, now)
    candidates = [c for c in _ranked(ctx, query, skip, audience, count * 4 + 8)
                  if c.person.id not in skip and not c.person.is_bot and c.person.active]
    ids = [c.person.id for c in candidates]
    load = store.weekly_load(ctx.session, ids, now - WEEK)
    cap = ctx.settings.expert_weekly_cap
    candidates = [c for c in candidates if load.get(c.person.id, 0) < cap]
    last = store.last_routed(ctx.session, [c.person.id for c in candidates])
    candidates.sort(key=lambda c: (not c.exact, -round(c.score, 3), last.get(c.person.id, _EPOCH), c.person.id))
    return candidates[:count]


def _ranked(ctx: Ctx, query: str, skip: set[int], audience: Collection[int] | None, want: int) -> list[Candidate]:
    """The best `want` candidates for `query`, members of `audience` only when given."""
    if audience is None:
        return list(find_experts(ctx, query, limit=want, exclude=sorted(skip)).candidates)
    members = set(audience) - skip
    found: dict[int, Candidate] = {}  # pages may overlap when the ranking skipped inactive people
    offset, page = 0, want
    while members and offset < AUDIENCE_SCAN:
        batch = find_experts(ctx, query, limit=page, exclude=sorted(skip), offset=offset).candidates
        for c in batch:
            if c.person.id in members:
                found.setdefault(c.person.id, c)
        if not batch or len(found) >= min(want, len(members)):
            break
        offset += page
        page *= 2
    return list(found.values())
