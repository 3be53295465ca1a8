"""Skills, aliases and evidence: the writes that feed "who knows X?", and the reads the
in-memory expertise index (handlers/expertise) is built from.

Every write that changes what the index should contain bumps the workspace's
`expertise_version` (so every process rebuilds its index) and appends one batch of
changes to `session.info["expertise_changes"]`, so the process that made the change
can apply it to its own index incrementally once the transaction commits. Evidence
itself is followed through the evidence log instead (store/evidence_log.py): it changes
with every message, far too often to rebuild anything.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Iterable, Sequence, Union

from sqlalchemy import bindparam, delete, extract, false, func, or_, select, update
from sqlalchemy.orm import Session

from bot.text import norm_key, topic_key
from store import driver_sql, evidence_log
from store.db import ALL_TENANTS, TenantError
from store.idempotency import insert_ignore
from store.models.core import Conversation, Evidence, EvidenceBatch, Person, PersonSkill, Skill, SkillAlias, Workspace
from store.models.taxonomy import TaxonomyLabel
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


@dataclass(frozen=True)
class VisibilityChanged:
    """A conversation's kind or indexing changed: who may read its evidence changed."""


Change = Union[SkillLinked, SkillUnlinked, TopicSeen, AliasSet, PersonActive, VisibilityChanged]


def bump_version(session: Session, tenant: str, changes: Sequence[Change] = ()) -> None:
    """Invalidate every process's index; record `changes` for this process's own index."""
    session.execute(
        update(Workspace).where(Workspace.id == tenant).values(expertise_version=Workspace.expertise_version + 1)
    )
    session.info.setdefault(CHANGES, []).append(tuple(changes))


def current_version(session: Session, tenant: str) -> int:
    return session.scalar(select(Workspace.expertise_version).where(Workspace.id == tenant)) or 0


def get_or_create_skill(session: Session, name: str, tenant: str | None = None) -> Skill:
    """The skill `name` stands for, created on its first declaration. Two people declaring
    a new skill at once must both go on with the one row: INSERT … ON CONFLICT DO NOTHING,
    then read it (on PostgreSQL the insert waits for the other's transaction to end)."""
    tenant = tenant or session.info.get("tenant")
    if tenant in (None, ALL_TENANTS):
        raise TenantError("a skill is created in one workspace")
    key = norm_key(name)
    query = select(Skill).where(Skill.tenant == tenant, Skill.key == key)
    skill = session.scalar(query)
    if skill is None:
        insert_ignore(session, Skill, {"tenant": tenant, "key": key, "name": name.strip()[:MAX_SKILL_CHARS]})
        skill = session.scalar(query)
        assert skill is not None
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
    """Declare skills; returns (added, already declared and now confirmed again), in the
    order given.

    Race-free: the same declaration sent twice at once (a double submit, two processes) adds
    the skill once and confirms it once instead of failing on a unique key. Rows are written
    in key order, so two declarations of the same new skills in opposite orders cannot wait
    for each other on PostgreSQL."""
    first: dict[str, str] = {}
    for name in names:
        first.setdefault(norm_key(name), name)  # one declaration per skill, its first spelling
    outcome: dict[str, tuple[Skill, bool]] = {}
    for key in sorted(first):
        skill = get_or_create_skill(session, first[key], tenant)
        new = insert_ignore(session, PersonSkill, {
            "tenant": tenant, "person_id": person.id, "skill_id": skill.id, "source": "declared",
            "created_at": now, "confirmed_at": now, "reminded_at": None,
        })
        if not new:
            link = session.scalar(
                select(PersonSkill).where(PersonSkill.person_id == person.id, PersonSkill.skill_id == skill.id))
            assert link is not None
            link.confirmed_at = now
            link.reminded_at = None
        outcome[key] = (skill, new)
    added: list[str] = []
    confirmed: list[str] = []
    changes: list[Change] = []
    for key in first:
        skill, new = outcome[key]
        (added if new else confirmed).append(skill.name)
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
    """Add or change an alias. Race-free: two admins adding the same alias at once end with
    one row (the later write's target) instead of a unique-key failure."""
    key, target_key = norm_key(alias), norm_key(target)
    if not insert_ignore(session, SkillAlias, {"tenant": tenant, "alias_key": key, "target": target_key}):
        row = session.scalar(select(SkillAlias).where(SkillAlias.alias_key == key))
        assert row is not None
        row.target = target_key
    session.flush()
    bump_version(session, tenant, [AliasSet(key, target_key)])


def aliases(session: Session) -> list[tuple[str, str]]:
    return [(a, t) for a, t in session.execute(select(SkillAlias.alias_key, SkillAlias.target).order_by(SkillAlias.alias_key))]


def alias_target(session: Session, alias: str) -> str | None:
    """The skill an admin's alias names (its `norm_key`), or None."""
    return session.scalar(select(SkillAlias.target).where(SkillAlias.alias_key == norm_key(alias)))


# Taxonomy: labels grouped by concept (`taxonomy import`) ---------------------------
@dataclass(frozen=True)
class ConceptLabel:
    concept: str
    lang: str
    label: str
    preferred: bool


def _invalidate(session: Session, tenant: str) -> None:
    """Move the workspace's expertise version without recording a batch of changes: every
    process, this one included, rebuilds its index on next use (an incremental `track_changes`
    in the same transaction sees one more version than batches and drops its index)."""
    session.execute(
        update(Workspace).where(Workspace.id == tenant).values(expertise_version=Workspace.expertise_version + 1)
    )


def import_taxonomy(session: Session, tenant: str, labels: Iterable[ConceptLabel]) -> tuple[int, int]:
    """Store a taxonomy's labels; returns (concepts named, labels new to the workspace).

    Idempotent: a label already stored for its concept is left as it is, so importing a file
    twice adds nothing. Words only: no person, no evidence. Written in chunks of INSERT … ON
    CONFLICT DO NOTHING (a whole ESCO export is some 100,000 labels)."""
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for item in labels:
        key = topic_key(item.label)[:200]
        concept = item.concept[:300]
        if key and (concept, key) not in rows:
            rows[(concept, key)] = {"tenant": tenant, "concept": concept, "lang": item.lang[:10],
                                    "label": item.label.strip()[:200], "key": key, "preferred": item.preferred}
    before = taxonomy_size(session)[1]
    statement = _insert_many_ignore(session.get_bind().dialect.name)
    values = list(rows.values())
    for start in range(0, len(values), 2000):
        session.execute(statement, values[start : start + 2000])
    added = taxonomy_size(session)[1] - before
    if added:
        _invalidate(session, tenant)
    return len({concept for concept, _ in rows}), added


@lru_cache(maxsize=4)
def _insert_many_ignore(dialect: str):  # noqa: ANN202 - a cached SQLAlchemy Insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(TaxonomyLabel.__table__).on_conflict_do_nothing()


def clear_taxonomy(session: Session, tenant: str) -> int:
    """Forget every imported label; returns how many there were."""
    _, count = taxonomy_size(session)
    if count:
        session.execute(delete(TaxonomyLabel).execution_options(synchronize_session=False))
        _invalidate(session, tenant)
    return int(count)


def taxonomy_size(session: Session) -> tuple[int, int]:
    """(concepts, labels) imported in the session's workspace."""
    concepts, labels = session.execute(
        select(func.count(func.distinct(TaxonomyLabel.concept)), func.count(TaxonomyLabel.id))).one()
    return int(concepts or 0), int(labels or 0)


def taxonomy_groups(session: Session) -> list[list[str]]:
    """The topic keys of each imported concept (for the index: one group per concept)."""
    groups: dict[str, list[str]] = {}
    for concept, key in session.execute(select(TaxonomyLabel.concept, TaxonomyLabel.key).order_by(TaxonomyLabel.concept)):
        groups.setdefault(concept, []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def concepts_of(session: Session, key: str) -> dict[str, list[ConceptLabel]]:
    """Every label of each concept that has `key` (a `topic_key`) among its labels."""
    concepts = select(TaxonomyLabel.concept).where(TaxonomyLabel.key == key).scalar_subquery()
    found: dict[str, list[ConceptLabel]] = {}
    for row in session.scalars(select(TaxonomyLabel).where(TaxonomyLabel.concept.in_(concepts)).order_by(TaxonomyLabel.id)):
        found.setdefault(row.concept, []).append(ConceptLabel(row.concept, row.lang, row.label, row.preferred))
    return found


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
    version; every write is sequenced by the evidence log when the transaction commits.
    """
    key = topic_key(topic)
    if not key:
        return False
    new_topic = session.scalar(select(Evidence.id).where(Evidence.topic_key == key).limit(1)) is None
    label = topic.lstrip("#")[:200]
    # INSERT … ON CONFLICT DO NOTHING on the unique key: the same piece recorded by two
    # events at once is written once, and the other goes on instead of failing.
    written = insert_ignore(session, Evidence, {
        "tenant": tenant, "batch": evidence_log.token(session), "person_id": person_id, "topic_key": key,
        "topic_label": label, "kind": kind, "weight": weight, "occurred_at": occurred_at, "source_ref": source_ref,
        "conversation_id": conversation_id, "snippet": snippet[:300],
    })
    if not written:
        return False
    evidence_log.touched(session, tenant)
    if new_topic:
        bump_version(session, tenant, [TopicSeen(key, label)])
    return True


# Reads for the index -------------------------------------------------------------
def excluded_people(session: Session) -> set[int]:
    """Ids of people who must never appear in results: deactivated people and bots."""
    return set(session.scalars(select(Person.id).where(or_(Person.active == false(), Person.is_bot))))


def all_skills(session: Session) -> dict[int, tuple[str, str]]:
    return {i: (k, n) for i, k, n in session.execute(select(Skill.id, Skill.key, Skill.name))}


def skill_links(session: Session, tenant: str) -> "np.ndarray":
    """(skill_id, person_id, confirmed_at as epoch seconds) of every declared skill, as one
    float64 array of three columns (ids and whole seconds are exact in a float64).

    The one bulk read of the index build (500,000 rows for 100,000 people): plain SQL on the
    table with its own tenant filter (the session's guard only scopes ORM entities), fetched
    by the driver in one call, in the session's transaction (SQLAlchemy's row objects would
    cost more than the query), and the database computes the epoch instead of Python parsing
    500,000 datetimes. On SQLite the rows come as one comma-separated text that numpy parses:
    1.5 million Python numbers and 500,000 tuples fewer, 0.65 s instead of 1.1 s.
    """
    import numpy as np

    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        epoch = "EXTRACT(EPOCH FROM confirmed_at)::float8"
    elif sqlite3.sqlite_version_info >= (3, 38):
        epoch = "unixepoch(confirmed_at)"
    else:
        epoch = "CAST(STRFTIME('%s', confirmed_at) AS INTEGER)"
    if sqlite:
        sql = f"SELECT group_concat(skill_id || ',' || person_id || ',' || {epoch}) FROM person_skills WHERE tenant = ?"
    else:
        sql = f"SELECT skill_id, person_id, {epoch} FROM person_skills WHERE tenant = ?"
    cursor = connection.connection.cursor()
    try:
        cursor.execute(driver_sql._native(sql, connection.dialect.paramstyle), (tenant,))  # noqa: SLF001
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if sqlite:
        text = rows[0][0] if rows else None
        if not text:
            return np.zeros((0, 3), dtype=np.float64)
        return np.fromstring(text, dtype=np.int64, sep=",").astype(np.float64).reshape(-1, 3)
    if not rows:
        return np.zeros((0, 3), dtype=np.float64)
    return np.array(rows, dtype=np.float64)


def evidence_topics(session: Session) -> list[tuple[str, str]]:
    """(topic_key, label) of every topic that has evidence."""
    return [(k, lbl) for k, lbl in session.execute(
        select(Evidence.topic_key, func.max(Evidence.topic_label)).group_by(Evidence.topic_key))]


def evidence_labels(session: Session, keys: Sequence[str]) -> list[tuple[str, str]]:
    """(topic_key, label) of these evidence topics (the index build asks only for those that
    are no declared skill: most evidence names a skill, whose label the index has)."""
    keys = list(keys)
    found: list[tuple[str, str]] = []
    for start in range(0, len(keys), 500):
        found += [(k, lbl) for k, lbl in session.execute(
            select(Evidence.topic_key, func.max(Evidence.topic_label))
            .where(Evidence.topic_key.in_(keys[start : start + 500])).group_by(Evidence.topic_key))]
    return found


# (id, person_id, topic_key, conversation_id, kind, weight, occurred epoch, conversation kind, indexing)
EvidenceRow = tuple[int, int, str, "int | None", str, float, float, "str | None", "bool | None"]


def evidence_rows(session: Session, tenant: str, upto: int, after: int | None = None) -> Iterable[EvidenceRow]:
    """Evidence for the in-memory index, with its conversation's kind and indexing (who may
    read it), streamed: every row of batches numbered up to `upto` (and rows with no batch,
    or whose batch was forgotten), or with `after` only the rows of batches numbered in
    (after, upto]. Core statements with their own tenant filter, like `skill_links`."""
    ev, conv, batches = Evidence.__table__, Conversation.__table__, EvidenceBatch.__table__
    columns = (ev.c.id, ev.c.person_id, ev.c.topic_key, ev.c.conversation_id, ev.c.kind, ev.c.weight,
               extract("epoch", ev.c.occurred_at), conv.c.kind, conv.c.indexing)
    of_batch = (batches.c.token == ev.c.batch) & (batches.c.tenant == ev.c.tenant)
    if after is None:
        query = (select(*columns)
                 .select_from(ev.outerjoin(batches, of_batch).outerjoin(conv, conv.c.id == ev.c.conversation_id))
                 .where(ev.c.tenant == tenant, or_(batches.c.seq.is_(None), batches.c.seq <= upto)))
    else:
        query = (select(*columns)
                 .select_from(batches.join(ev, of_batch).outerjoin(conv, conv.c.id == ev.c.conversation_id))
                 .where(batches.c.tenant == tenant, batches.c.seq > after, batches.c.seq <= upto))
    return session.connection().execute(query, execution_options={"yield_per": 10000})  # type: ignore[return-value]


def member_of(session: Session, person_id: int, conversation_ids: Sequence[int]) -> set[int]:
    """Which of `conversation_ids` `person_id` belongs to (one indexed read)."""
    if not conversation_ids:
        return set()
    sql = ("SELECT conversation_id FROM conversation_members WHERE person_id = ? AND conversation_id IN ("
           + driver_sql.placeholders(len(conversation_ids)) + ")")
    return {row[0] for row in driver_sql.fetch(session, sql, [person_id, *conversation_ids])}


CARD_COLUMNS = ("id", "external_id", "display_name", "handle", "title", "department", "site",
                "accepts_mentions", "active", "is_bot")


def person_cards(session: Session, tenant: str, ids: Sequence[int]) -> list[tuple]:  # type: ignore[type-arg]
    """The CARD_COLUMNS of people by id: what results show, read at the driver level (the ORM
    would cost a lookup more than its whole ranking; results need no Person object)."""
    if not ids:
        return []
    sql = (f"SELECT {', '.join(CARD_COLUMNS)} FROM people WHERE tenant = ? AND id IN ("
           + driver_sql.placeholders(len(ids)) + ")")
    return driver_sql.fetch(session, sql, [tenant, *ids])


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


# Topic vectors (the meaning tier, handlers/expertise/meaning.py) ------------------
def topic_vectors(session: Session, tenant: str, model: str, keys: Sequence[str] | None = None) -> list[tuple[str, str, bytes]]:
    """(topic_key, text, vector bytes) stored for `model` in the workspace, all or those of `keys`."""
    from store.models.expertise import TopicVector

    table = TopicVector.__table__
    query = select(table.c.topic_key, table.c.text, table.c.vector).where(table.c.tenant == tenant, table.c.model == model)
    if keys is None:
        return [(k, t, bytes(v)) for k, t, v in session.connection().execute(query)]
    found: list[tuple[str, str, bytes]] = []
    keys = list(keys)
    for start in range(0, len(keys), 500):
        part = query.where(table.c.topic_key.in_(keys[start : start + 500]))
        found += [(k, t, bytes(v)) for k, t, v in session.connection().execute(part)]
    return found


def save_topic_vectors(session: Session, tenant: str, model: str, rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Store (topic_key, text, vector bytes) rows; a vector another process stored first is kept."""
    if not rows:
        return
    from store.models.expertise import TopicVector

    table = TopicVector.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).on_conflict_do_nothing()
    values = [{"tenant": tenant, "model": model, "topic_key": k, "text": t[:200], "vector": v} for k, t, v in rows]
    for start in range(0, len(values), 2000):
        session.connection().execute(statement, values[start : start + 2000])
