"""The contribution loop: ideas (with votes, follows, campaigns), help requests routed to
experts, experts' away periods, kudos, and per-workspace contribution settings."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime, utcnow


class ContributionSetting(TenantScoped, Base):
    """A workspace-wide setting of this feature, e.g. `ideas_channel` -> conversation id."""

    __tablename__ = "contribution_settings"
    __table_args__ = (UniqueConstraint("tenant", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    value: Mapped[str] = mapped_column(String(300), default="")
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdeaCampaign(TenantScoped, Base):
    __tablename__ = "idea_campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    tags: Mapped[str] = mapped_column(String(500), default="")  # space-separated labels
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary_posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Idea(TenantScoped, Base):
    """An idea. `author_id` is kept even when `anonymous`: only the audited admin command reads it.

    `status` is draft (held back while duplicates are offered), new, under_review, accepted,
    in_progress, done or declined. `vote_count` excludes the author's own vote.
    """

    __tablename__ = "ideas"
    __table_args__ = (
        UniqueConstraint("tenant", "number"),
        Index("ix_ideas_status", "tenant", "status"),
        Index("ix_ideas_author_time", "tenant", "author_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer)  # what people see and type: #1, #2… per workspace
    title: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(String(500), default="")  # space-separated labels
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="new")
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("idea_campaigns.id", ondelete="SET NULL"), nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    source_permalink: Mapped[str] = mapped_column(String(500), default="")
    vote_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdeaTag(TenantScoped, Base):
    __tablename__ = "idea_tags"
    __table_args__ = (UniqueConstraint("idea_id", "key"), Index("ix_idea_tags_key", "tenant", "key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))


class IdeaVote(TenantScoped, Base):
    __tablename__ = "idea_votes"
    __table_args__ = (UniqueConstraint("idea_id", "person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdeaFollow(TenantScoped, Base):
    __tablename__ = "idea_follows"
    __table_args__ = (UniqueConstraint("idea_id", "person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HelpChannel(TenantScoped, Base):
    """A channel where every top-level message is a help request; its own escalation delay."""

    __tablename__ = "help_channels"
    __table_args__ = (UniqueConstraint("conversation_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    escalation_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HelpRequest(TenantScoped, Base):
    """A question routed to experts. `source_key` deduplicates redelivered channel messages.

    `escalate_at` is computed once at creation (working hours in the channel's time zone);
    the escalation job claims a request by setting `escalated_at` with a conditional update.
    A request from a private channel or group chat reaches only its members until the asker
    shares it with experts outside (`shared_at`, `shared_by`): store/help_requests.py reads this.
    """

    __tablename__ = "help_requests"
    __table_args__ = (
        UniqueConstraint("tenant", "source_key"),
        UniqueConstraint("tenant", "number"),
        Index("ix_help_requests_escalation", "tenant", "status", "escalate_at"),
        Index("ix_help_requests_thread", "tenant", "conversation_external_id", "thread_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(300))
    number: Mapped[int] = mapped_column(Integer)  # per workspace, like ideas
    asker_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    topics: Mapped[str] = mapped_column(String(500), default="")  # space-separated labels
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    conversation_external_id: Mapped[str] = mapped_column(String(200), default="")
    thread_id: Mapped[str] = mapped_column(String(200), default="")
    permalink: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | claimed | resolved
    claimer_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    helper_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shared_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HelpRouting(TenantScoped, Base):
    """One expert shown for one request: counts toward the weekly cap, drives rotation."""

    __tablename__ = "help_routings"
    __table_args__ = (
        UniqueConstraint("request_id", "person_id"),
        Index("ix_help_routings_person_time", "tenant", "person_id", "routed_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("help_requests.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer, default=1)
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExpertAway(TenantScoped, Base):
    __tablename__ = "expert_away"
    __table_args__ = (UniqueConstraint("person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Kudos(TenantScoped, Base):
    """One thank-you from `giver` to one recipient (a kudos to three people is three rows).
    `day` is the giver's local date: one thank-you per recipient a day (rows older than the
    rule have none)."""

    __tablename__ = "kudos"
    __table_args__ = (
        Index("ix_kudos_giver_time", "tenant", "giver_id", "created_at"),
        Index("ix_kudos_recipient_time", "tenant", "recipient_id", "created_at"),
        UniqueConstraint("tenant", "giver_id", "recipient_id", "day", name="uq_kudos_one_a_day"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    giver_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    skills: Mapped[str] = mapped_column(String(500), default="")  # space-separated labels
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    help_request_id: Mapped[int | None] = mapped_column(ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    day: Mapped[date | None] = mapped_column(Date, nullable=True)
