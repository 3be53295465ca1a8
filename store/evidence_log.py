"""The evidence log: how every process's in-memory expertise index follows evidence that
other processes write or remove, with one primary-key read per lookup.

Each transaction that writes or removes evidence takes, just before it commits, the next
number of its workspace's sequence (`evidence_sequences`) and stamps it on the rows it
inserted (`evidence.seq`, NULL until then) and on the removals it logged
(`evidence_removals`). Taking the number locks the sequence row, so concurrent writers
are serialised from that moment to their commit: numbers become visible in order. A
reader that reads `seq = V` (one primary-key read per lookup) therefore knows that every
change numbered up to V is committed and readable, and catches up with two indexed
range reads (`seq > mine AND seq <= V`) only when V moved. Nothing else locks the
sequence row, and a transaction takes it last: it cannot deadlock.

Changing a conversation's kind or indexing changes who may read its evidence: that bumps
the workspace's `expertise_version`, so every index is rebuilt (it is rare).

Rows loaded in bulk outside a session (a benchmark organisation, a restore) keep a NULL
sequence and are picked up when an index is built; readers drop duplicates by id.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, event, insert, literal, select, update
from sqlalchemy.orm import Session, object_session

from store import driver_sql
from store.models.core import Conversation, Evidence, EvidenceRemoval, EvidenceSequence

PENDING = "evidence_log_pending"          # session.info: tenants whose evidence changed
VISIBILITY = "evidence_log_visibility"    # session.info: tenants whose conversations changed class
HOOKED = "evidence_log_hooked"
REMOVALS_KEPT = timedelta(days=3)
INDEX_MAX_AGE = timedelta(days=1)


def touched(session: Session, tenant: str) -> None:
    """Record that this transaction wrote evidence for `tenant` (sequenced at commit)."""
    _hook(session)
    session.info.setdefault(PENDING, set()).add(tenant)


def delete_evidence(session: Session, *where: Any) -> int:
    """Delete the evidence rows matching `where` (in the session's workspace), logging each
    removal for the other processes' indexes. Returns the number of rows deleted."""
    tenant = session.info.get("tenant")
    criteria = list(where)
    if tenant not in (None, "*"):
        criteria.append(Evidence.tenant == tenant)
        tenants = {tenant}
    else:  # a job sweeping every workspace
        tenants = set(session.scalars(select(Evidence.tenant).where(*criteria).distinct()))
    now = datetime.now(timezone.utc)
    logged = session.execute(
        insert(EvidenceRemoval).from_select(
            ["tenant", "evidence_id", "topic_key", "removed_at"],
            select(Evidence.tenant, Evidence.id, Evidence.topic_key, literal(now, EvidenceRemoval.removed_at.type))
            .where(*criteria),
        )
    )
    if not tenants or not logged.rowcount:
        return 0
    result = session.execute(Evidence.__table__.delete().where(*criteria))
    for name in tenants:
        touched(session, name)
    return int(result.rowcount or 0)


def purge_removals(session: Session) -> int:
    """Forget removals older than REMOVALS_KEPT. Wall-clock time on both sides: an index not
    synced for INDEX_MAX_AGE (less than that) is rebuilt instead of caught up."""
    cutoff = datetime.now(timezone.utc) - REMOVALS_KEPT
    result = session.execute(
        EvidenceRemoval.__table__.delete().where(EvidenceRemoval.removed_at < cutoff)
    )
    return int(result.rowcount or 0)


def _hook(session: Session) -> None:
    if session.info.get(HOOKED):
        return
    session.info[HOOKED] = True
    event.listen(session, "before_commit", _sequence)


def _sequence(session: Session) -> None:
    """Stamp this transaction's evidence changes with the workspace's next sequence number."""
    if session.get_nested_transaction() is not None:
        return  # a savepoint: the outer transaction sequences everything once
    session.flush()
    visibility = session.info.pop(VISIBILITY, set())
    if visibility:
        from store.expertise import VisibilityChanged, bump_version

        for tenant in sorted(visibility):
            bump_version(session, tenant, [VisibilityChanged()])
    pending = session.info.pop(PENDING, set())
    conn = session.connection()
    for tenant in sorted(pending):
        seq = conn.execute(_next_number(conn.dialect.name), {"tenant": tenant}).scalar_one()
        for table in (Evidence.__table__, EvidenceRemoval.__table__):
            conn.execute(update(table).where(table.c.tenant == tenant, table.c.seq.is_(None)).values(seq=seq))


@lru_cache(maxsize=2)
def _next_number(dialect: str):  # noqa: ANN202 - a cached SQLAlchemy Insert
    """`INSERT ... ON CONFLICT DO UPDATE SET seq = seq + 1 RETURNING seq`: the workspace's next
    number, its row created on the first write."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    table = EvidenceSequence.__table__
    stmt = dialect_insert(table).values(tenant=bindparam("tenant"), seq=1)
    return stmt.on_conflict_do_update(index_elements=[table.c.tenant], set_={"seq": table.c.seq + 1}).returning(table.c.seq)


def current(session: Session, tenant: str) -> int:
    """The workspace's last committed number (0: no evidence written since sequencing began)."""
    rows = driver_sql.fetch(session, "SELECT seq FROM evidence_sequences WHERE tenant = ?", [tenant])
    return int(rows[0][0]) if rows else 0


@event.listens_for(Conversation.kind, "set", propagate=True)
@event.listens_for(Conversation.indexing, "set", propagate=True)
def _conversation_class_changed(target: Conversation, value: Any, old: Any, _initiator: Any) -> None:
    """Who may read a conversation's evidence depends on its kind and indexing."""
    if old is value or old == value or not isinstance(old, (str, bool)):
        return  # unchanged, or a new object's first value
    session = object_session(target)
    if session is None or target.tenant is None:
        return
    _hook(session)
    session.info.setdefault(VISIBILITY, set()).add(target.tenant)


def removed_between(session: Session, tenant: str, after: int, upto: int) -> list[tuple[int, str]]:
    """(evidence_id, topic_key) of removals sequenced in (after, upto]."""
    table = EvidenceRemoval.__table__
    return [(i, k) for i, k in session.connection().execute(
        select(table.c.evidence_id, table.c.topic_key)
        .where(table.c.tenant == tenant, table.c.seq > after, table.c.seq <= upto)
    )]
