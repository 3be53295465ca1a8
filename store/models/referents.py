"""Référents and accompaniment: suggestions routed to the responsible référent, requests for
new channels and for access, channels' welcome texts and who was welcomed, first-time
contributors. Queries in store/suggestions.py and store/referents.py."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime, utcnow


class Suggestion(TenantScoped, Base):
    """A suggestion for improving the tool or the way of working. `author_id` is kept when
    `anonymous`: only the audited admin look-up reads it (and the bot, to keep the author told).

    `route` says which référents received it: channel, department, site, everywhere or admins
    (`route_value` the channel id, department or site). `status`: open, taken, answered, done,
    declined."""

    __tablename__ = "suggestions"
    __table_args__ = (
        UniqueConstraint("tenant", "number"),
        UniqueConstraint("tenant", "source_key"),
        Index("ix_suggestions_author", "tenant", "author_id"),
        Index("ix_suggestions_escalate", "status", "escalated_at", "escalate_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    source_key: Mapped[str] = mapped_column(String(300))
    permalink: Mapped[str] = mapped_column(String(500), default="")
    route: Mapped[str] = mapped_column(String(20))
    route_value: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    handler_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SuggestionRouting(TenantScoped, Base):
    """Who a suggestion was routed to (`escalated`: reached by the escalation to admins)."""

    __tablename__ = "suggestion_routings"
    __table_args__ = (UniqueConstraint("suggestion_id", "person_id"), Index("ix_suggestion_routings_person", "tenant", "person_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpaceRequest(TenantScoped, Base):
    """A request for a new channel (`kind` channel: `name`, `purpose`) or for access to one
    (`kind` access: `conversation_id`). `status`: pending, approved, declined, done, failed."""

    __tablename__ = "space_requests"
    __table_args__ = (
        UniqueConstraint("tenant", "number"),
        UniqueConstraint("tenant", "source_key"),
        Index("ix_space_requests_author", "tenant", "author_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    source_key: Mapped[str] = mapped_column(String(300))
    route: Mapped[str] = mapped_column(String(20))
    route_value: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpaceRouting(TenantScoped, Base):
    """Who may decide a space request (the référents or animators it was routed to)."""

    __tablename__ = "space_routings"
    __table_args__ = (UniqueConstraint("request_id", "person_id"), Index("ix_space_routings_person", "tenant", "person_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("space_requests.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WelcomeText(TenantScoped, Base):
    """A channel's welcome text set by its animators, one per language; `enabled` False: off."""

    __tablename__ = "welcome_texts"
    __table_args__ = (UniqueConstraint("conversation_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    text_en: Mapped[str] = mapped_column(Text, default="")
    text_fr: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelFirst(TenantScoped, Base):
    """A person's first time in a channel: `kind` joined (welcomed once) or contributed (its
    animators hear of it once). The unique key makes each happen once across processes."""

    __tablename__ = "channel_firsts"
    __table_args__ = (UniqueConstraint("conversation_id", "person_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
