"""Adoption analytics (issue 15): reactions by person, daily activity roll-ups, first
contributions, which days are rolled up, and the workspace's analytics settings.

Roll-up rows carry plain ids (no foreign key to people or conversations): when a person asks
to be forgotten their row goes and their past counts stay, naming nobody; a conversation's
counts stay too. See store/analytics.py for how they are built and read.
"""
from __future__ import annotations

from datetime import date, datetime

from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime, utcnow


class MessageReaction(TenantScoped, Base):
    """Someone reacted to a message (any emoji, once per message and person), on a UTC day.
    Written by store.social.react; a removed reaction keeps its row (the person did react)."""

    __tablename__ = "message_reactions"
    __table_args__ = (
        UniqueConstraint("tenant", "conversation_id", "message_external_id", "person_id"),
        Index("ix_message_reactions_day", "tenant", "day"),
        Index("ix_message_reactions_conv_day", "tenant", "conversation_id", "day"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Integer)
    message_external_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


CONTRIBUTING = ("posts", "replies", "ideas", "help_asked", "help_answered", "kudos_given")
REACTING = ("reactions", "votes")
PART_CONTRIBUTED, PART_REACTED = 2, 1  # ActivityDay.part: the row's strongest kind of taking part


def part_of(counts: Any) -> int:
    """`ActivityDay.part` for a row's counts (a mapping of kind -> count): 2 when the person
    contributed, 1 when they only reacted or voted, 0 for nothing. Groups take its maximum."""
    if any(counts.get(k) for k in CONTRIBUTING):
        return PART_CONTRIBUTED
    return PART_REACTED if any(counts.get(k) for k in REACTING) else 0


def _part_default(context: Any) -> int:
    return part_of(context.get_current_parameters())


class ActivityDay(TenantScoped, Base):
    """What one person did in one conversation on one UTC day, counted by kind.

    `conversation_id` 0 means "outside any channel" (an idea, a vote or a thank-you typed to
    the bot in a DM). Votes and reactions are "reacting"; the other kinds are "contributing".
    `part` sums that up (`part_of`, computed from the counts on insert): organisation reports
    group tens of thousands of people's rows by person, and read `part` from the
    `ix_analytics_activity_day_part` index alone (day, conversation, person, part) instead of
    each row's eight counts."""

    __tablename__ = "analytics_activity"
    __table_args__ = (
        UniqueConstraint("tenant", "day", "conversation_id", "person_id"),
        Index("ix_analytics_activity_conv_day", "tenant", "conversation_id", "day"),
        Index("ix_analytics_activity_person_day", "tenant", "person_id", "day"),
        Index("ix_analytics_activity_day_part", "tenant", "day", "conversation_id", "person_id", "part"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    conversation_id: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(Integer)
    posts: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    reactions: Mapped[int] = mapped_column(Integer, default=0)
    ideas: Mapped[int] = mapped_column(Integer, default=0)
    votes: Mapped[int] = mapped_column(Integer, default=0)
    help_asked: Mapped[int] = mapped_column(Integer, default=0)
    help_answered: Mapped[int] = mapped_column(Integer, default=0)
    kudos_given: Mapped[int] = mapped_column(Integer, default=0)
    part: Mapped[int] = mapped_column(SmallInteger, default=_part_default, server_default="0")


class FirstContribution(TenantScoped, Base):
    """The first UTC day a person contributed in a conversation (`conversation_id` > 0) or in
    the organisation's shared spaces (`conversation_id` 0: public channels and the bot's DMs)."""

    __tablename__ = "analytics_first"
    __table_args__ = (
        UniqueConstraint("tenant", "person_id", "conversation_id"),
        Index("ix_analytics_first_conv_day", "tenant", "conversation_id", "day"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer)
    conversation_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)


class RollupDay(TenantScoped, Base):
    """A UTC day whose activity rows are written: inserted by the transaction that writes them,
    so two workers never roll the same day up twice (INSERT … ON CONFLICT DO NOTHING)."""

    __tablename__ = "analytics_rollups"
    __table_args__ = (UniqueConstraint("tenant", "day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    rolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnalyticsSetting(TenantScoped, Base):
    """A workspace setting of analytics, e.g. `min_group` -> "5"."""

    __tablename__ = "analytics_settings"
    __table_args__ = (UniqueConstraint("tenant", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    value: Mapped[str] = mapped_column(String(300), default="")
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
