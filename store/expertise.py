"""Skills, aliases and evidence: the writes that feed "who knows X?", and the reads the
in-memory expertise index (bot/expertise) is built from.

Every write that changes what the index should contain bumps the workspace's
`expertise_version` (so every process rebuilds its index) and appends one batch of
changes to `session.info["expertise_changes"]`, so the process that made the change
can apply it to its own index incrementally once the transaction commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Iterator, Sequence, Union

from sqlalchemy import case, false, func, or_, select, update
from sqlalchemy.orm import Session

from bot.expertise.scoring import AGE_BUCKETS, KIND_WEIGHT, OLDEST_DECAY, OTHER_KIND_WEIGHT
from bot.text import norm_key, topic_key
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


def skill_links(session: Session) -> Iterator[tuple[int, int, datetime]]:
    """(skill_id, person_id, confirmed_at) of every declared skill, streamed."""
    result = session.execute(
        select(PersonSkill.skill_id, PersonSkill.person_id, PersonSkill.confirmed_at),
        execution_options={"yield_per": 20000},
    )
    for skill_id, person_id, confirmed in result:
        yield skill_id, person_id, confirmed


def evidence_topics(session: Session) -> list[tuple[str, str]]:
    """(topic_key, label) of every topic that has evidence."""
    return [(k, lbl) for k, lbl in session.execute(
        select(Evidence.topic_key, func.max(Evidence.topic_label)).group_by(Evidence.topic_key))]


def _readable_evidence(reader_id: int):  # noqa: ANN202 - a SQLAlchemy clause
    return or_(Evidence.conversation_id.is_(None), readable_by(reader_id))


def evidence_scores(
    session: Session, keys: Sequence[str], reader_id: int, now: datetime, limit: int
) -> list[tuple[int, str, float]]:
    """(person_id, topic_key, decayed weighted sum) for the best `limit` pairs, counting
    only evidence `reader_id` may read. Decay per age bucket (see bot/expertise/scoring.py)."""
    if not keys:
        return []
    decay = case(
        *((Evidence.occurred_at > now - timedelta(days=upper), factor) for upper, factor in AGE_BUCKETS),
        else_=OLDEST_DECAY,
    )
    kind = case(*((Evidence.kind == k, w) for k, w in KIND_WEIGHT.items()), else_=OTHER_KIND_WEIGHT)
    total = func.sum(Evidence.weight * kind * decay)
    query = (
        select(Evidence.person_id, Evidence.topic_key, total)
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.topic_key.in_(list(keys)), _readable_evidence(reader_id))
        .group_by(Evidence.person_id, Evidence.topic_key)
        .order_by(total.desc())
        .limit(limit)
    )
    return [(p, k, float(s or 0.0)) for p, k, s in session.execute(query)]


def evidence_counts(
    session: Session, keys: Sequence[str], person_ids: Sequence[int], reader_id: int
) -> list[tuple[int, str, str, int, datetime]]:
    """(person_id, topic_key, kind, count, latest) of evidence `reader_id` may read."""
    if not keys or not person_ids:
        return []
    query = (
        select(Evidence.person_id, Evidence.topic_key, Evidence.kind, func.count(Evidence.id), func.max(Evidence.occurred_at))
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.topic_key.in_(list(keys)), Evidence.person_id.in_(list(person_ids)), _readable_evidence(reader_id))
        .group_by(Evidence.person_id, Evidence.topic_key, Evidence.kind)
    )
    return [(p, k, kind, int(n), last) for p, k, kind, n, last in session.execute(query)]


def person_evidence(session: Session, person_id: int, reader_id: int) -> list[tuple[str, str, str, int, datetime]]:
    """(topic_key, label, kind, count, latest) of someone's evidence that `reader_id` may read."""
    query = (
        select(Evidence.topic_key, func.max(Evidence.topic_label), Evidence.kind, func.count(Evidence.id), func.max(Evidence.occurred_at))
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.person_id == person_id, _readable_evidence(reader_id))
        .group_by(Evidence.topic_key, Evidence.kind)
    )
    return [(k, lbl, kind, int(n), last) for k, lbl, kind, n, last in session.execute(query)]
