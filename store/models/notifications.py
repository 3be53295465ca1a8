"""Pending real-time pings and each person's notification budget settings."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime


class Notification(TenantScoped, Base):
    """One ping for one person. Rows are the queue: `pending` → `claimed` (a worker took it)
    → `sent` (or `capped` when the daily cap ate it). A (person, thread_key) pair exists once,
    so the same thread never pings the same person twice."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("person_id", "thread_key"),
        Index("ix_notifications_status_created", "status", "created_at"),
        Index("ix_notifications_person_sent", "person_id", "status", "sent_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(120))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    thread_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    claim_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotifySettings(TenantScoped, Base):
    """A person's own budget; NULL columns mean "the workspace default" (bot.config.Settings)."""

    __tablename__ = "notify_settings"
    __table_args__ = (UniqueConstraint("person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quiet_hours: Mapped[str | None] = mapped_column(String(20), nullable=True)  # "21:00-07:30" or "off"
    snooze_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
