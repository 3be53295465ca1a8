"""Readers: who read which message, as read receipts tell (Matrix's public `m.read`: the only
messenger here where a bot can count readers instead of guessing them).

One row per (conversation, message, person): a receipt says the person read the conversation
up to that message. The conversation is a plain id (like the analytics rows); the person's row
goes with the person (a forgotten person's reads are erased with them).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime, utcnow


class MessageRead(TenantScoped, Base):
    __tablename__ = "message_reads"
    __table_args__ = (
        UniqueConstraint("tenant", "conversation_id", "message_external_id", "person_id"),
        Index("ix_message_reads_conv_time", "tenant", "conversation_id", "read_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Integer)
    message_external_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
