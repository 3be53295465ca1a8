"""The evidence log: how every process's in-memory expertise index follows evidence that
other processes write or remove, with one primary-key read per lookup.

A transaction that writes or removes evidence stamps a random token on the rows it
inserts (`evidence.batch`) and on the removals it logs (`evidence_removals`), and just
before committing takes the next number of its workspace's sequence
(`evidence_sequences`) and records `token -> number` (`evidence_batches`). Taking the
number locks the sequence row until the commit, so numbers become visible in order: a
reader that reads `seq = V` (one primary-key read) knows that every batch numbered up to
V is committed and readable, and catches up with two indexed reads of the batches in
(its number, V] only when V moved. Nothing else locks the sequence row and a transaction
takes it last: it cannot deadlock. No row is written twice (stamping rows at commit
would rewrite every one of them on PostgreSQL).

Changing a conversation's kind or indexing changes who may read its evidence: that bumps
the workspace's `expertise_version`, so every index is rebuilt (it is rare).

Rows loaded in bulk outside a session (a benchmark organisation, a restore) have no batch
and are picked up when an index is built; readers drop duplicates by id.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, bindparam, event, insert, literal, select
from sqlalchemy.orm import Session, object_session

from store import driver_sql
from store.models.core import Conversation, Evidence, EvidenceBatch, EvidenceRemoval, EvidenceSequence

PENDING = "evidence_log_pending"          # session.info: tenants whose evidence changed
VISIBILITY = "evidence_log_visibility"    # session.info: tenants whose conversations changed class
TOKEN = "evidence_log_token"              # session.info: this transaction's batch token
HOOKED = "evidence_log_hooked"
KEPT = timedelta(days=3)                  # batches and removals older than this are forgotten
INDEX_MAX_AGE = timedelta(days=1)         # an index not caught up for this long is rebuilt


def token(session: Session) -> int:
    """This transaction's batch token, to stamp on the evidence it writes."""
    _hook(session)
    found = session.info.get(TOKEN)
    if found is None:
        found = session.info[TOKEN] = secrets.randbits(62)
    return found


def touched(session: Session, tenant: str) -> None:
    """Record that this transaction wrote evidence for `tenant` (sequenced at commit)."""
    token(session)
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
            ["tenant", "evidence_id", "topic_key", "batch", "removed_at"],
            select(Evidence.tenant, Evidence.id, Evidence.topic_key, literal(token(session), BigInteger()),
                   literal(now, EvidenceRemoval.removed_at.type))
            .where(*criteria),
        )
    )
    if not tenants or not logged.rowcount:
        return 0
    result = session.execute(Evidence.__table__.delete().where(*criteria))
    for name in tenants:
        touched(session, name)
    return int(result.rowcount or 0)


def purge(session: Session) -> int:
    """Forget batches and removals older than KEPT. Wall-clock time on both sides: an index
    not caught up for INDEX_MAX_AGE (less than that) is rebuilt instead, and a build loads
    evidence whose batch was forgotten."""
    cutoff = datetime.now(timezone.utc) - KEPT
    removals = session.execute(EvidenceRemoval.__table__.delete().where(EvidenceRemoval.removed_at < cutoff))
    session.execute(EvidenceBatch.__table__.delete().where(EvidenceBatch.committed_at < cutoff))
    return int(removals.rowcount or 0)


def _hook(session: Session) -> None:
    if session.info.get(HOOKED):
        return
    session.info[HOOKED] = True
    event.listen(session, "before_commit", _sequence)


def _sequence(session: Session) -> None:
    """Number this transaction's evidence changes: the workspace's next number, for its token."""
    if session.get_nested_transaction() is not None:
        return  # a savepoint: the outer transaction sequences everything once
    session.flush()
    visibility = session.info.pop(VISIBILITY, set())
    if visibility:
        from store.expertise import VisibilityChanged, bump_version

        for tenant in sorted(visibility):
            bump_version(session, tenant, [VisibilityChanged()])
    pending = session.info.pop(PENDING, set())
    batch = session.info.pop(TOKEN, None)
    if not pending or batch is None:
        return
    conn = session.connection()
    now = datetime.now(timezone.utc)
    for tenant in sorted(pending):
        seq = conn.execute(_next_number(conn.dialect.name), {"tenant": tenant}).scalar_one()
        conn.execute(insert(EvidenceBatch.__table__).values(token=batch, tenant=tenant, seq=seq, committed_at=now))


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
    """(evidence_id, topic_key) of removals in batches numbered (after, upto]."""
    batches, removals = EvidenceBatch.__table__, EvidenceRemoval.__table__
    return [(i, k) for i, k in session.connection().execute(
        select(removals.c.evidence_id, removals.c.topic_key)
        .select_from(batches.join(removals, (removals.c.batch == batches.c.token) & (removals.c.tenant == batches.c.tenant)))
        .where(batches.c.tenant == tenant, batches.c.seq > after, batches.c.seq <= upto)
    )]
