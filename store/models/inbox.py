"""The durable inbox: every event or command a messenger delivers is written here before it
is acknowledged, then processed by a worker whose transaction also marks it done.

Not tenant-scoped: a row is written before its payload is parsed, and the workers that drain
it serve every workspace. The tenant column is informative (metrics, logs)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, UTCDateTime, utcnow


class InboxEvent(Base):
    """One delivery from a messenger. `state` is pending, done or poison.

    `dedupe_key` is the platform's own id for the delivery (Slack event id or trigger id, Teams
    activity id, console line number): a retry or a replay of the same delivery hits the unique
    key and is acknowledged without a second row. `order_key` (a conversation) makes the rows
    of one conversation run one at a time, in arrival order. A claimed row carries a lease
    (`locked_by`, `locked_until`); a worker killed mid-work loses it when the lease expires.
    """

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("platform", "dedupe_key"),
        Index("ix_inbox_events_due", "state", "next_attempt_at"),
        Index("ix_inbox_events_order", "order_key", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    tenant: Mapped[str] = mapped_column(String(120), default="")
    order_key: Mapped[str] = mapped_column(String(300), default="")
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str] = mapped_column(String(80), default="")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
