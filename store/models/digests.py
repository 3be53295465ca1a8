"""Digest schedules, the periods they claimed, and each delivery of a built digest.

Exactly-once rests on two unique keys, not on memory:
- `digest_runs (digest_id, period_key)`: whoever inserts it builds that period's digest;
- `digest_deliveries (run_id, target_key)`: one row per recipient, pending → sending → sent,
  so a crash between building and posting resumes where it stopped.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime, utcnow
from store.models.contribution import HelpRequest, Idea, Kudos
from store.models.core import ConversationMember


class Digest(TenantScoped, Base):
    """A schedule. `kind` is "channel" (posted in `conversation_id`) or "personal" (a DM to
    `person_id`). `cron` is always set (daily/weekly/monthly are stored as cron expressions,
    read in `tz`); `next_run_at` caches the next occurrence so the job finds due rows by index."""

    __tablename__ = "digests"
    __table_args__ = (Index("ix_digests_due", "status", "next_run_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="channel")
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True, index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=True, index=True)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frequency: Mapped[str] = mapped_column(String(10), default="weekly")  # daily | weekly | monthly | cron
    cron: Mapped[str] = mapped_column(String(100))
    tz: Mapped[str] = mapped_column(String(64), default="UTC")
    sources: Mapped[str] = mapped_column(Text, default="{}")  # JSON, see handlers.digests.parse.Sources
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | paused
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestRun(TenantScoped, Base):
    """One claimed period of one digest. `status`: sent (deliveries made), empty (nothing new),
    missed (found after the grace window), manual (`digest run`)."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("digest_id", "period_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"), index=True)
    period_key: Mapped[str] = mapped_column(String(40))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="claimed")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestDelivery(TenantScoped, Base):
    """One built digest on its way to one place. `payload` is the serialised Outbound, frozen
    when the period was claimed, so a resumed delivery posts exactly what was built."""

    __tablename__ = "digest_deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "target_key"),
        Index("ix_digest_deliveries_status", "status", "lease_until"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("digest_runs.id", ondelete="CASCADE"), index=True)
    target_key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# Indexes for the reads a digest makes on other features' tables: each digest asks "what
# happened in this channel during this period", which those tables' own indexes (by author,
# by status) cannot answer without scanning. Declared here so the metadata matches the
# digests_0002 migration that creates them.
Index("ix_digest_read_members", ConversationMember.conversation_id, ConversationMember.joined_at)
Index("ix_digest_read_ideas", Idea.tenant, Idea.conversation_id, Idea.created_at)
Index("ix_digest_read_help", HelpRequest.tenant, HelpRequest.conversation_id, HelpRequest.created_at)
Index("ix_digest_read_kudos", Kudos.tenant, Kudos.conversation_id, Kudos.created_at)
