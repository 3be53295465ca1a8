"""Skills, aliases and evidence: the writes that feed "who knows X?", and the reads the
in-memory expertise index (bot/expertise) is built from.

Every write that changes what the index should contain bumps the workspace's
`expertise_version` (so every process rebuilds its index) and appends one batch of
changes to `session.info["expertise_changes"]`, so the process that made the change
can apply it to its own index incrementally once the transaction commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Iterable, Sequence, Union

from sqlalchemy import bindparam, case, extract, false, func, or_, select, union_all, update
from sqlalchemy.orm import Session

from bot.expertise.scoring import AGE_BUCKETS, KIND_WEIGHT, OLDEST_DECAY, OTHER_KIND_WEIGHT
from bot.text import norm_key, topic_key
from store.models.base import UTCDateTime
from store.models.core import Conversation, Evidence, Person, PersonSkill, Skill, SkillAlias, Workspace
from store.visibility import readable_by

CHANGES = "expertise_changes"
MAX_SKILL_CHARS = 80


@dataclass(frozen=True)
class SkillLinked:
    person_id: int
    key: str
    name: str
    confirmed_at: datetime


@dataclass(frozen=True)
class SkillUnlinked:
    person_id: int
    key: str


@dataclass(frozen=True)
class TopicSeen:
    key: str
    label: str


@dataclass(frozen=True)
class AliasSet:
    alias_key: str
    target: str


@dataclass(frozen=True)
class PersonActive:
    person_id: int
    active: bool


Change = Union[SkillLinked, SkillUnlinked, TopicSeen, AliasSet, PersonActive]


def bump_version(session: Session, tenant: str, changes: Sequence[Change] = ()) -> None:
    """Invalidate every process's index; record `changes` for this process's own index."""
    session.execute(
        update(Workspace).where(Workspace.id == tenant).values(expertise_version=Workspace.expertise_version + 1)
    )
    session.info.setdefault(CHANGES, []).append(tuple(changes))


def current_version(session: Session, tenant: str) -> int:
    return session.scalar(select(Workspace.expertise_version).where(Workspace.id == tenant)) or 0


def get_or_create_skill(session: Session, name: str) -> Skill:
    key = norm_key(name)
    skill = session.scalar(select(Skill).where(Skill.key == key))
    if skill is None:
        skill = Skill(name=name.strip()[:MAX_SKILL_CHARS], key=key)
        session.add(skill)
        session.flush()
    return skill


def person_skills(session: Session, person: Person) -> list[tuple[Skill, PersonSkill]]:
    rows = session.execute(
        select(Skill, PersonSkill)
        .join(PersonSkill, PersonSkill.skill_id == Skill.id)
        .where(PersonSkill.person_id == person.id)
        .order_by(Skill.name)
    )
    return [(s, ps) for s, ps in rows]


def add_skills(session: Session, tenant: str, person: Person, names: Iterable[str], now: datetime) -> tuple[list[str], list[str]]:
    """Declare skills; returns (added, already declared and now confirmed again)."""
    added: list[str] = []
    confirmed: list[str] = []
    changes: list[Change] = []
    for name in names:
        skill = get_or_create_skill(session, name)
        link = session.scalar(
            select(PersonSkill).where(PersonSkill.person_id == person.id, PersonSkill.skill_id == skill.id)
        )
        if link is None:
            session.add(PersonSkill(person_id=person.id, skill_id=skill.id, source="declared", created_at=now, confirmed_at=now))
            added.append(skill.name)
        else:
            link.confirmed_at = now
            link.reminded_at = None
            confirmed.append(skill.name)
        changes.append(SkillLinked(person.id, skill.key, skill.name, now))
    session.flush()
    if changes:
        bump_version(session, tenant, changes)
    return added, confirmed


def remove_skills(session: Session, tenant: str, person: Person, names: Iterable[str]) -> tuple[list[str], list[str]]:
    removed: list[str] = []
    unknown: list[str] = []
    changes: list[Change] = []
    for name in names:
        key = norm_key(name)
        found = session.execute(
            select(PersonSkill, Skill)
            .join(Skill, Skill.id == PersonSkill.skill_id)
            .where(PersonSkill.person_id == person.id, Skill.key == key)
        ).first()
        if found is None:
            unknown.append(name)
        else:
            link, skill = found
            session.delete(link)
            removed.append(skill.name)
            changes.append(SkillUnlinked(person.id, key))
    session.flush()
    if changes:
        bump_version(session, tenant, changes)
    return removed, unknown


def add_alias(session: Session, tenant: str, alias: str, target: str) -> None:
    key = norm_key(alias)
    row = session.scalar(select(SkillAlias).where(SkillAlias.alias_key == key))
    if row is None:
        session.add(SkillAlias(alias_key=key, target=norm_key(target)))
    else:
        row.target = norm_key(target)
    session.flush()
    bump_version(session, tenant, [AliasSet(key, norm_key(target))])


def aliases(session: Session) -> list[tuple[str, str]]:
    return [(a, t) for a, t in session.execute(select(SkillAlias.alias_key, SkillAlias.target).order_by(SkillAlias.alias_key))]


def set_active(session: Session, tenant: str, person: Person, active: bool) -> None:
    """Activate or deactivate someone; deactivated people leave every expertise result."""
    if person.active == active:
        return
    person.active = active
    session.flush()
    bump_version(session, tenant, [PersonActive(person.id, active)])


def add_evidence(
    session: Session,
    tenant: str,
    person_id: int,
    topic: str,
    kind: str,
    occurred_at: datetime,
    *,
    weight: float = 1.0,
    source_ref: str = "",
    conversation_id: int | None = None,
    snippet: str = "",
) -> bool:
    """Record one piece of evidence once (idempotent on kind + source_ref + person + topic).

    Returns True when a row was written. A topic new to the workspace bumps the index
    version (evidence counts are read live at lookup time, so other writes need not).
    """
    key = topic_key(topic)
    if not key:
        return False
    exists = session.scalar(
        select(Evidence.id).where(
            Evidence.kind == kind, Evidence.source_ref == source_ref, Evidence.person_id == person_id, Evidence.topic_key == key
        )
    )
    if exists is not None:
        return False
    new_topic = session.scalar(select(Evidence.id).where(Evidence.topic_key == key).limit(1)) is None
    label = topic.lstrip("#")[:200]
    session.add(
        Evidence(
            person_id=person_id,
            topic_key=key,
            topic_label=label,
            kind=kind,
            weight=weight,
            occurred_at=occurred_at,
            source_ref=source_ref,
            conversation_id=conversation_id,
            snippet=snippet[:300],
        )
    )
    session.flush()
    if new_topic:
        bump_version(session, tenant, [TopicSeen(key, label)])
    return True


# Reads for the index -------------------------------------------------------------
def excluded_people(session: Session) -> set[int]:
    """Ids of people who must never appear in results: deactivated people and bots."""
    return set(session.scalars(select(Person.id).where(or_(Person.active == false(), Person.is_bot))))


def all_skills(session: Session) -> dict[int, tuple[str, str]]:
    return {i: (k, n) for i, k, n in session.execute(select(Skill.id, Skill.key, Skill.name))}


def skill_links(session: Session, tenant: str) -> Iterable[tuple[int, int, float]]:
    """(skill_id, person_id, confirmed_at as epoch seconds) of every declared skill, streamed.

    The one bulk read of the index build (500,000 rows for 100,000 people): a Core
    statement on the table, so it carries its own tenant filter (the session's guard only
    scopes ORM entities), and the database computes the epoch (an int on SQLite, a
    Decimal on PostgreSQL) instead of Python parsing 500,000 datetimes.
    """
    table = PersonSkill.__table__
    return session.execute(  # type: ignore[return-value]
        select(table.c.skill_id, table.c.person_id, extract("epoch", table.c.confirmed_at)).where(table.c.tenant == tenant),
        execution_options={"yield_per": 50000},
    )


def evidence_topics(session: Session) -> list[tuple[str, str]]:
    """(topic_key, label) of every topic that has evidence."""
    return [(k, lbl) for k, lbl in session.execute(
        select(Evidence.topic_key, func.max(Evidence.topic_label)).group_by(Evidence.topic_key))]


EVIDENCE_KINDS = tuple(KIND_WEIGHT)


@dataclass(frozen=True)
class EvidenceStats:
    """Readable evidence of one person on one topic: the decayed weighted sum and counts."""

    person_id: int
    key: str
    weighted: float
    latest: datetime
    counts: dict[str, int]


@lru_cache(maxsize=3)
def _evidence_statement(top: bool, by_people: bool):  # noqa: ANN202 - a cached SQLAlchemy Select
    """Built once: the statement only takes bound parameters (tenant, keys, reader, cut-offs,
    limit, people). `top`: the best pairs by weight; `by_people`: those of given people;
    both: one round trip, the two unioned (duplicates are dropped by the caller).

    It is run on the session's connection, below the ORM layer (a third of the cost on
    the lookup's hot path), so it carries its own tenant filter: the session's guard only
    scopes ORM executions.
    """
    decay = case(
        *((Evidence.occurred_at > bindparam(f"cut{i}", type_=UTCDateTime), factor) for i, (_, factor) in enumerate(AGE_BUCKETS)),
        else_=OLDEST_DECAY,
    )
    kind = case(*((Evidence.kind == k, w) for k, w in KIND_WEIGHT.items()), else_=OTHER_KIND_WEIGHT)
    weighted = func.sum(Evidence.weight * kind * decay)
    counts = [func.sum(case((Evidence.kind == k, 1), else_=0)) for k in EVIDENCE_KINDS]
    query = (
        select(Evidence.person_id, Evidence.topic_key, weighted, func.max(Evidence.occurred_at), func.count(Evidence.id), *counts)
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.tenant == bindparam("tenant"), Evidence.topic_key.in_(bindparam("keys", expanding=True)),
               or_(Evidence.conversation_id.is_(None), readable_by(bindparam("reader"))))  # type: ignore[arg-type]
        .group_by(Evidence.person_id, Evidence.topic_key)
    )
    best = query.order_by(weighted.desc()).limit(bindparam("limit"))
    theirs = query.where(Evidence.person_id.in_(bindparam("people", expanding=True)))
    if top and by_people:
        return union_all(select(*best.subquery().c), theirs)
    return best if top else theirs


def evidence_stats(
    session: Session, tenant: str, keys: Sequence[str], reader_id: int, now: datetime, *,
    limit: int = 0, person_ids: Sequence[int] = (),
) -> list[EvidenceStats]:
    """Evidence on `keys` that `reader_id` may read, per person and topic: the best `limit`
    pairs by decayed weight and those of `person_ids` (each pair once). Decay:
    bot/expertise/scoring.py."""
    if not keys or (not limit and not person_ids):
        return []
    params: dict[str, object] = {"tenant": tenant, "keys": list(keys), "reader": reader_id}
    params.update({f"cut{i}": now - timedelta(days=upper) for i, (upper, _) in enumerate(AGE_BUCKETS)})
    if person_ids:
        params["people"] = list(person_ids)
    if limit:
        params["limit"] = limit
    out = []
    seen: set[tuple[int, str]] = set()
    rows = session.connection().execute(_evidence_statement(bool(limit), bool(person_ids)), params)
    for person_id, key, weighted, latest, total, *by_kind in rows:
        if (person_id, key) in seen:
            continue
        seen.add((person_id, key))
        counts = {k: int(n or 0) for k, n in zip(EVIDENCE_KINDS, by_kind) if n}
        other = int(total) - sum(counts.values())
        if other > 0:
            counts["other"] = other
        out.append(EvidenceStats(person_id, key, float(weighted or 0.0), latest, counts))
    return out


def _readable_evidence(reader_id: int):  # noqa: ANN202 - a SQLAlchemy clause
    return or_(Evidence.conversation_id.is_(None), readable_by(reader_id))


def person_evidence(session: Session, person_id: int, reader_id: int) -> list[tuple[str, str, str, int, datetime]]:
    """(topic_key, label, kind, count, latest) of someone's evidence that `reader_id` may read."""
    query = (
        select(Evidence.topic_key, func.max(Evidence.topic_label), Evidence.kind, func.count(Evidence.id), func.max(Evidence.occurred_at))
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.person_id == person_id, _readable_evidence(reader_id))
        .group_by(Evidence.topic_key, Evidence.kind)
    )
    return [(k, lbl, kind, int(n), last) for k, lbl, kind, n, last in session.execute(query)]


def readable_topic_keys(session: Session, viewer_id: int, keys: Iterable[str]) -> set[str]:
    """The topic keys with at least one piece of evidence `viewer_id` may read."""
    from store.models.core import Conversation
    from store.visibility import readable_by

    keys = list(keys)
    if not keys:
        return set()
    rows = session.scalars(
        select(Evidence.topic_key)
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.topic_key.in_(keys), or_(Evidence.conversation_id.is_(None), readable_by(viewer_id)))
        .distinct()
    )
    return set(rows)
