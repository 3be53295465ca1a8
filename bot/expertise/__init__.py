"""Expertise lookup: "who knows X?" and "which known topics does this text name?".

Public API (other features call these):

- `find_experts(ctx, query, limit=5, exclude=(), offset=0) -> ExpertResult`
- `topics_in(ctx, text) -> list[str]` (labels of known topics named in free text)
- `track_changes(ctx)`: call after writing through `store.expertise` so this process
  updates its own index when the transaction commits instead of rebuilding it.

The per-process index cache lives in `ctx.services.extras["expertise"]`, one index per
workspace, rebuilt when `Workspace.expertise_version` moved. Ranking: bot/expertise/scoring.py.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Collection

from sqlalchemy import event
from sqlalchemy.orm import Session

import store.expertise as xstore
from bot.context import Ctx
from bot.expertise.index import DEFAULT_ALIASES, ExpertiseIndex, StaleIndex, load_alias_groups
from bot.expertise.scoring import DECLARED, evidence_score, freshness, is_stale
from bot.expertise.when import ago
from store import people as people_store
from store.models.core import Person

__all__ = ["Candidate", "ExpertResult", "find_experts", "topics_in", "track_changes", "index_for", "ExpertiseCache"]
MAX_QUERY_CHARS = 200
MAX_REASONS = 4
MARGIN = 5  # extra candidates considered, for people filtered out late (deactivated meanwhile)
EVIDENCE_KINDS = ("help", "kudos", "thanked", "hashtag", "mentioned", "other")


def _kind_order(kind: str) -> int:
    return EVIDENCE_KINDS.index(kind) if kind in EVIDENCE_KINDS else len(EVIDENCE_KINDS)


@dataclass(frozen=True)
class Candidate:
    person: Person
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
        if index is None or index.version != version:
            index = ExpertiseIndex.build(ctx.session, ctx.tenant, cache.alias_groups)
            cache.indexes[ctx.tenant] = index
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
        matches = index.match(query)
        factors = {**matches.close, **matches.exact}
        if not factors:
            return ExpertResult(query, (), (), tuple(index.suggestions(query, readable=_readable_for(ctx))))
        excluded = set(exclude) | index.excluded
        labels = {k: index.topics[k].label for k in factors}
        declared: dict[tuple[int, str], float] = {}
        per_key: dict[int, dict[str, float]] = {}
        _declared_candidates(index, matches.exact, excluded, want, now_ts, stale_days, declared, per_key)
        if len(per_key) >= want:
            # Close matches always rank after exact ones: with enough exact people they cannot show.
            factors = dict(matches.exact)
        else:
            _declared_candidates(index, matches.close, excluded, want, now_ts, stale_days, declared, per_key)
        evidence_keys = [k for k in factors if index.topics[k].has_evidence]
    stats: dict[tuple[int, str], xstore.EvidenceStats] = {}
    if evidence_keys:
        # One read: the strongest evidence (people the declarations missed) plus the evidence
        # of the best declared candidates (so their "why" is complete).
        top = want * len(evidence_keys)
        declared_best = [p for p, _, _ in _rank(per_key, matches.exact, matches.close)[:want]]
        rows = xstore.evidence_stats(ctx.session, ctx.tenant, evidence_keys, ctx.actor.id, now, limit=top,
                                     person_ids=declared_best)
        with index_lock(ctx):
            for row in rows:
                if row.person_id in excluded or row.key not in factors:
                    continue
                stats[(row.person_id, row.key)] = row
                scores = per_key.setdefault(row.person_id, {})
                if (row.person_id, row.key) not in declared:
                    topic = index.topics.get(row.key)
                    confirmed = topic.declared_at(row.person_id) if topic is not None else None
                    if confirmed is not None:
                        declared[(row.person_id, row.key)] = confirmed
                        scores[row.key] = DECLARED * freshness(confirmed, now_ts, stale_days)
                scores[row.key] = scores.get(row.key, 0.0) + evidence_score(row.weighted)
    ranked = _rank(per_key, matches.exact, matches.close)
    window = ranked[offset : offset + limit + MARGIN]
    people = people_store.people_by_ids(ctx.session, [p for p, _, _ in window])
    chosen = [(people[p], s, ex) for p, s, ex in window if p in people and people[p].active and not people[p].is_bot][:limit]
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
    for key in keys:
        topic = index.topics[key]
        taken = 0
        for i in range(len(topic.people) - 1, -1, -1):
            person_id = topic.people[i]
            if person_id in excluded:
                continue
            declared[(person_id, key)] = topic.confirmed[i]
            per_key.setdefault(person_id, {})[key] = DECLARED * freshness(topic.confirmed[i], now_ts, stale_days)
            taken += 1
            if taken >= want:
                break


def _rank(per_key: dict[int, dict[str, float]], exact: dict[str, float], close: dict[str, float]) -> list[tuple[int, float, bool]]:
    ranked: list[tuple[int, float, bool]] = []
    for person_id, scores in per_key.items():
        exact_score = sum(v for k, v in scores.items() if k in exact)
        close_score = sum(v * close[k] for k, v in scores.items() if k in close)
        if exact_score > 0:
            ranked.append((person_id, exact_score + 0.1 * close_score, True))
        elif close_score > 0:
            ranked.append((person_id, close_score, False))
    ranked.sort(key=lambda r: (not r[2], -r[1], r[0]))
    return ranked


def _reasons(
    ctx: Ctx,
    person_id: int,
    keys: list[str],
    labels: dict[str, str],
    declared: dict[tuple[int, str], float],
    stats: dict[tuple[int, str], xstore.EvidenceStats],
    now: datetime,
    stale_days: int,
) -> tuple[str, ...]:
    why: list[str] = []
    for key in keys:
        confirmed = declared.get((person_id, key))
        if confirmed is not None:
            when = ago(ctx, datetime.fromtimestamp(confirmed, timezone.utc), now)
            reason = "expert.why.stale" if is_stale(confirmed, now.timestamp(), stale_days) else "expert.why.declared"
            why.append(ctx.t(reason, skill=labels[key], when=when))
        found = stats.get((person_id, key))
        if found is not None:
            when = ago(ctx, found.latest, now)
            for kind, n in sorted(found.counts.items(), key=lambda kv: _kind_order(kv[0])):
                why.append(ctx.t(f"expert.why.{kind}", topic=labels[key], count=n, when=when))
    return tuple(why[:MAX_REASONS])
