"""The durable outbox: effects a committed transaction decided, kept until the platform took them.

Not tenant-scoped (like the inbox): the workers that send serve every workspace, and a row is
written by the transaction of the work that produced it, whatever its tenant session. The
tenant column is informative (metrics, logs)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, UTCDateTime, utcnow


class OutboxEntry(Base):
    """Effects on their way out (`bot/effects_json.py` document), sent after their transaction
    committed. `state`: pending → sent, or failed after `store.outbox.MAX_ATTEMPTS`.

    `done` lists the indexes of the effects already delivered, so a retry sends the others
    only. `context` is what a platform needs to answer the interaction the effects reply to
    (Slack: response_url, channel, user; never a token). A row is written leased to the
    process that will send it right after the commit; a process killed before that loses the
    lease, and the sweeper (`outbox.send` job) sends the row."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), default="")
    tenant: Mapped[str] = mapped_column(String(120), default="")
    source: Mapped[str] = mapped_column(String(80), default="")
    effects: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text, default="{}")
    done: Mapped[str] = mapped_column(String(2000), default="")
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str] = mapped_column(String(80), default="")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryStep(Base):
    """What the sending of one effect did on the platform before its visible step, so that a
    retry of the same delivery key (`bot.delivery.Attempt.key`: "outbox:<row>:<index>",
    "digest:<id>") finishes that work instead of doing it again. Slack: the id of a file
    uploaded but maybe not yet shared into its channel (adapters/slack/sender.py).

    One row per (key, step); `value` is a small JSON document the adapter reads back.
    `noted_at` lets a reader ignore a note older than the effect it is sending (a SQLite row
    id reused after the outbox was purged) and lets the sweeper purge old notes."""

    __tablename__ = "delivery_steps"
    __table_args__ = (Index("ix_delivery_steps_noted_at", "noted_at"),)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="{}")
    noted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
