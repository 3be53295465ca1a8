"""Teams conversation references: how to reach a chat, channel or person proactively.

One row per conversation the bot has seen (channel, group chat or personal chat). Personal
chats also carry the person's Teams user id so a private answer can find them. The
reference is Bot Framework's own `ConversationReference` as JSON (wire format).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, utcnow, UTCDateTime


class TeamsReference(TenantScoped, Base):
    __tablename__ = "teams_references"
    __table_args__ = (
        UniqueConstraint("tenant", "conversation_id"),
        Index("ix_teams_references_user", "tenant", "user_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(10), default="public")  # dm | group | public | private
    user_id: Mapped[str] = mapped_column(String(200), default="")  # personal chats: the person
    team_id: Mapped[str] = mapped_column(String(300), default="")
    service_url: Mapped[str] = mapped_column(String(500), default="")
    bot_id: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(Text, default="{}")
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
