"""Skills, aliases and evidence: the writes that feed "who knows X?".

Every write that changes what the expertise index should contain bumps the
workspace's `expertise_version`, so every process rebuilds its in-memory index.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.text import norm_key, topic_key
from store.models.core import Evidence, Person, PersonSkill, Skill, SkillAlias, Workspace


def bump_version(session: Session, tenant: str) -> None:
    session.execute(
        update(Workspace).where(Workspace.id == tenant).values(expertise_version=Workspace.expertise_version + 1)
    )


def get_or_create_skill(session: Session, name: str) -> Skill:
    key = norm_key(name)
    skill = session.scalar(select(Skill).where(Skill.key == key))
    if skill is None:
        skill = Skill(name=name.strip(), key=key)
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
    """Declare skills; returns (added, already confirmed-again)."""
    added: list[str] = []
    confirmed: list[str] = []
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
    session.flush()
    bump_version(session, tenant)
    return added, confirmed


def remove_skills(session: Session, tenant: str, person: Person, names: Iterable[str]) -> tuple[list[str], list[str]]:
    removed: list[str] = []
    unknown: list[str] = []
    for name in names:
        key = norm_key(name)
        link = session.scalar(
            select(PersonSkill)
            .join(Skill, Skill.id == PersonSkill.skill_id)
            .where(PersonSkill.person_id == person.id, Skill.key == key)
        )
        if link is None:
            unknown.append(name)
        else:
            session.delete(link)
            removed.append(name)
    session.flush()
    if removed:
        bump_version(session, tenant)
    return removed, unknown


def add_alias(session: Session, tenant: str, alias: str, target: str) -> None:
    key = norm_key(alias)
    row = session.scalar(select(SkillAlias).where(SkillAlias.alias_key == key))
    if row is None:
        session.add(SkillAlias(alias_key=key, target=norm_key(target)))
    else:
        row.target = norm_key(target)
    session.flush()
    bump_version(session, tenant)


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

    Returns True when a row was written. A topic new to the workspace bumps the index version.
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
    session.add(
        Evidence(
            person_id=person_id,
            topic_key=key,
            topic_label=topic.lstrip("#"),
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
        bump_version(session, tenant)
    return True
