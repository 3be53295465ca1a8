"""Expertise lookup: "who knows X?" and "which known topics does this text name?".

Public API (other features call these):

- `find_experts(ctx, query, limit=5, exclude=(), offset=0) -> ExpertResult`
- `topics_in(ctx, text) -> list[str]` (labels of known topics named in free text)
- `track_changes(ctx)`: call after writing through `store.expertise` so this process
  updates its own index when the transaction commits instead of rebuilding it.

The per-process index cache lives in `ctx.services.extras["expertise"]`, one index per
workspace, rebuilt when `Workspace.expertise_version` moved. Ranking: handlers/expertise/scoring.py.
"""
from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Collection

from sqlalchemy import event
from sqlalchemy.orm import Session

import store.expertise as xstore
from store import evidence_log
from bot.context import Ctx
from handlers.expertise.evidence import PersonStats
from handlers.expertise.index import DEFAULT_ALIASES, ExpertiseIndex, StaleIndex, TopicMatches, load_alias_groups
from handlers.expertise.scoring import DAY, DECLARED, evidence_score, freshness, is_stale
from handlers.expertise.when import ago

__all__ = ["Candidate", "PersonCard", "ExpertResult", "find_experts", "topics_in", "track_changes", "index_for", "ExpertiseCache"]
MAX_QUERY_CHARS = 200
MAX_REASONS = 4
MARGIN = 5  # extra candidates considered, for people filtered out late (deactivated meanwhile)
EVIDENCE_KINDS = ("help", "kudos", "thanked", "hashtag", "mentioned", "other")


def _kind_order(kind: str) -> int:
    return EVIDENCE_KINDS.index(kind) if kind in EVIDENCE_KINDS else len(EVIDENCE_KINDS)


@dataclass(frozen=True)
class PersonCard:
    """What a result shows of a person (`ctx.name` and `ctx.mention` take it like a Person).
    Load the Person row (store.people.people_by_ids) to change or notify them."""

    id: int
    external_id: str
    display_name: str
    handle: str
    title: str
    department: str
    site: str
    accepts_mentions: bool
    active: bool
    is_bot: bool


@dataclass(frozen=True)
class Candidate:
    person: PersonCard
    score: float
    matched: tuple[str, ...]
    why: tuple[str, ...]
    exact: bool


@dataclass(frozen=True)
class ExpertResult:
    query: str
    exact: tuple[Candidate, ...]
    close: tuple[Candidate, ...]
    suggestions: tuple[str, ...]

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self.exact + self.close


@dataclass
class ExpertiseCache:
    """One index per workspace for this process; alias files are read once."""

    alias_groups: list[list[str]]
    indexes: dict[str, ExpertiseIndex] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def for_files(cls, extra: str = "") -> "ExpertiseCache":
        groups = load_alias_groups(DEFAULT_ALIASES)
        if extra:
            groups += load_alias_groups(Path(extra))
        return cls(groups)


def _cache(ctx: Ctx) -> ExpertiseCache:
    extras = ctx.services.extras
    cache = extras.get("expertise")
    if cache is None:
        cache = extras.setdefault("expertise", ExpertiseCache.for_files(ctx.settings.aliases_file))
    return cache


def index_for(ctx: Ctx) -> ExpertiseIndex:
    """This workspace's index, rebuilt when another process (or a rollback) moved its version."""
    cache = _cache(ctx)
    version = ctx.workspace.expertise_version  # loaded with the event's context: no extra query
    with cache.lock:
        index = cache.indexes.get(ctx.tenant)
        if index is None or index.version != version or index.evidence.stale():
            index = ExpertiseIndex.build(ctx.session, ctx.tenant, cache.alias_groups, ctx.now().timestamp())
            cache.indexes[ctx.tenant] = index
        else:
            index.evidence.sync(ctx.session, ctx.tenant, evidence_log.current(ctx.session, ctx.tenant))
        return index


def track_changes(ctx: Ctx) -> None:
    """Apply this transaction's expertise changes to this process's index once committed.

    The index takes them only if its version plus the number of batches equals the
    version at commit; otherwise (a concurrent writer, a rolled-back savepoint) it is
    dropped and rebuilt on next use.
    """
    session = ctx.session
    if session.info.get("expertise_tracked"):
        return
    session.info["expertise_tracked"] = True
    cache, tenant = _cache(ctx), ctx.tenant

    def before_commit(s: Session) -> None:
        s.info["expertise_version_after"] = xstore.current_version(s, tenant)

    def after_commit(s: Session) -> None:
        batches = s.info.pop(xstore.CHANGES, [])
        after = s.info.pop("expertise_version_after", None)
        with cache.lock:
            index = cache.indexes.get(tenant)
            if index is None or not batches or after is None:
                return
            if index.version != after - len(batches):
                cache.indexes.pop(tenant, None)
                return
            try:
                for batch in batches:
                    for change in batch:
                        index.apply(change)
            except StaleIndex:
                cache.indexes.pop(tenant, None)
                return
            index.version = after

    event.listen(session, "before_commit", before_commit)
    event.listen(session, "after_commit", after_commit)


def topics_in(ctx: Ctx, text: str) -> list[str]:
    """Labels of the known skills and topics named in `text` (exactly or by an alias)."""
    index = index_for(ctx)
    with index_lock(ctx):
        return [index.topics[k].label for k in index.topics_in(text[:5000])]


def index_lock(ctx: Ctx) -> threading.RLock:
    return _cache(ctx).lock


def find_experts(
    ctx: Ctx, query: str, *, limit: int = 5, exclude: Collection[int] = (), offset: int = 0
) -> ExpertResult:
    """The best `limit` active people for `query`: exact and alias matches first, then close ones."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    index = index_for(ctx)
    now = ctx.now()
    now_ts = now.timestamp()
    stale_days = ctx.settings.skill_stale_days
    want = offset + limit + len(exclude) + MARGIN
    with index_lock(ctx):
        excluded = set(exclude) | index.excluded
        declared: dict[tuple[int, str], float] = {}
        per_key: dict[int, dict[str, float]] = {}
        exact_keys = index.exact_matches(query)
        _declared_candidates(index, exact_keys, excluded, want, now_ts, stale_days, declared, per_key)
        if len(per_key) >= want:
            # Close matches always rank after exact ones: with enough exact people they cannot
            # show (nor change their order), so the fuzzy search is not even run.
            matches = TopicMatches(exact_keys, {})
        else:
            matches = TopicMatches(exact_keys, index.close_matches(query, exact_keys))
            _declared_candidates(index, matches.close, excluded, want, now_ts, stale_days, declared, per_key)
        factors = {**matches.close, **matches.exact}
        if not factors:
            return ExpertResult(query, (), (), tuple(index.suggestions(query, readable=_readable_for(ctx))))
        labels = {k: index.topics[k].label for k in factors}
        evidence_keys = [k for k in factors if index.topics[k].has_evidence]
    stats: dict[tuple[int, str], PersonStats] = {}
    if evidence_keys:
        # The strongest readable evidence (people the declarations missed) plus the evidence
        # of the best declared candidates (so their "why" is complete), from memory.
        declared_best = [p for p, _, _ in _rank(per_key, matches.exact, matches.close, want)]
        with index_lock(ctx):
            private = index.evidence.private_conversations(evidence_keys, now_ts)
        readable = xstore.member_of(ctx.session, ctx.actor.id, sorted(private)) if private else set()
        with index_lock(ctx):
            found = index.evidence.stats(evidence_keys, now_ts, readable, top=want, people=declared_best, excluded=excluded)
            for person_id, key, row in found:
                if person_id in excluded or key not in factors:
                    continue
                stats[(person_id, key)] = row
                scores = per_key.setdefault(person_id, {})
                if (person_id, key) not in declared:
                    confirmed = index.topics[key].declared_at(person_id) if key in index.topics else None
                    if confirmed is not None:
                        declared[(person_id, key)] = confirmed
                        scores[key] = DECLARED * freshness(confirmed, now_ts, stale_days)
                scores[key] = scores.get(key, 0.0) + evidence_score(row.weighted)
    ranked = _rank(per_key, matches.exact, matches.close)
    chosen = _people_for(ctx, ranked[offset:], limit)
    exact: list[Candidate] = []
    close: list[Candidate] = []
    for person, score, is_exact in chosen:
        keys = sorted(per_key[person.id], key=lambda k: (-factors[k], -per_key[person.id][k], labels[k]))
        why = _reasons(ctx, person.id, keys, labels, declared, stats, now, stale_days)
        candidate = Candidate(person, round(score, 4), tuple(dict.fromkeys(labels[k] for k in keys)), why, is_exact)
        (exact if is_exact else close).append(candidate)
    suggestions: tuple[str, ...] = ()
    if not chosen:
        with index_lock(ctx):
            suggestions = tuple(index.suggestions(query, readable=_readable_for(ctx)))
    return ExpertResult(query, tuple(exact), tuple(close), suggestions)


def _readable_for(ctx: Ctx) -> "Callable[[list[str]], set[str]]":
    return lambda keys: xstore.readable_topic_keys(ctx.session, ctx.actor.id, keys)


def _declared_candidates(
    index: ExpertiseIndex, keys: dict[str, float], excluded: set[int], want: int, now_ts: float, stale_days: int,
    declared: dict[tuple[int, str], float], per_key: dict[int, dict[str, float]],
) -> None:
    """The `want` most recently confirmed declarations of each topic (freshness is monotonic
    in the confirmation time, so they are the best declared candidates)."""
    fresh_since = now_ts - max(1, stale_days) * DAY
    for key in keys:
        topic = index.topics[key]
        people, confirmed = topic.people, topic.confirmed
        taken = 0
        for i in range(len(people) - 1, -1, -1):
            person_id = people[i]
            if person_id in excluded:
                continue
            when = confirmed[i]
            declared[(person_id, key)] = when
            weight = DECLARED if when >= fresh_since else DECLARED * freshness(when, now_ts, stale_days)
            scores = per_key.get(person_id)
            if scores is None:
                per_key[person_id] = {key: weight}
            else:
                scores[key] = weight
            taken += 1
            if taken >= want:
                break


def _people_for(ctx: Ctx, ranked: list[tuple[int, float, bool]], limit: int) -> list[tuple[PersonCard, float, bool]]:
    """Cards of the best `limit` ranked people, skipping anyone deactivated (or made a bot)
    since the index last heard of it: such rows are read again further down the list."""
    chosen: list[tuple[PersonCard, float, bool]] = []
    start = 0
    while len(chosen) < limit and start < len(ranked):
        window = ranked[start : start + limit - len(chosen)]
        start += len(window)
        rows = xstore.person_cards(ctx.session, ctx.tenant, [p for p, _, _ in window])
        cards = {row[0]: PersonCard(*row[:7], *(bool(flag) for flag in row[7:])) for row in rows}
        chosen += [(cards[p], s, ex) for p, s, ex in window if p in cards and cards[p].active and not cards[p].is_bot]
    return chosen


def _rank(
    per_key: dict[int, dict[str, float]], exact: dict[str, float], close: dict[str, float], top: int = 0,
) -> list[tuple[int, float, bool]]:
    """People by score: exact matches first (close ones add a tenth), then close-only ones;
    the best `top` of them when `top` is given."""
    order: list[tuple[bool, float, int]] = []  # sorts as wanted: exact first, best score, lowest id
    for person_id, scores in per_key.items():
        exact_score = close_score = 0.0
        for key, value in scores.items():
            if key in exact:
                exact_score += value
            else:
                close_score += value * close[key]
        if exact_score > 0:
            order.append((False, -(exact_score + 0.1 * close_score), person_id))
        elif close_score > 0:
            order.append((True, -close_score, person_id))
    chosen = heapq.nsmallest(top, order) if top else sorted(order)
    return [(person_id, -negative, not is_close) for is_close, negative, person_id in chosen]


def _reasons(
    ctx: Ctx,
    person_id: int,
    keys: list[str],
    labels: dict[str, str],
    declared: dict[tuple[int, str], float],
    stats: dict[tuple[int, str], PersonStats],
    now: datetime,
    stale_days: int,
) -> tuple[str, ...]:
    why: list[str] = []
    for key in keys:
        if len(why) >= MAX_REASONS:
            break
        confirmed = declared.get((person_id, key))
        if confirmed is not None:
            when = ago(ctx, datetime.fromtimestamp(confirmed, timezone.utc), now)
            reason = "expert.why.stale" if is_stale(confirmed, now.timestamp(), stale_days) else "expert.why.declared"
            why.append(ctx.t(reason, skill=labels[key], when=when))
        found = stats.get((person_id, key))
        if found is not None:
            when = ago(ctx, datetime.fromtimestamp(found.latest, timezone.utc), now)
            for kind, n in sorted(found.count_by_kind().items(), key=lambda kv: _kind_order(kv[0])):
                why.append(ctx.t(f"expert.why.{kind}", topic=labels[key], count=n, when=when))
    return tuple(why[:MAX_REASONS])
