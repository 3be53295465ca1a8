"""Slack OAuth tables, shaped exactly as slack_sdk's SQLAlchemy installation and state stores
expect them (`slack_bots`, `slack_installations`, `slack_oauth_states`).

They live in `Base.metadata` so Alembic creates them (migration `slack_0001`) and the
test fixtures drop them; slack_sdk itself reads and writes them with its own Table
objects. They are not tenant-scoped: an install is looked up by team before a tenant
is known. Datetimes are naive UTC because slack_sdk writes them that way.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base


class SlackBot(Base):
    __tablename__ = "slack_bots"
    __table_args__ = (Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    team_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_token: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    bot_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    bot_scopes: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    bot_refresh_token: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    installed_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


class SlackInstallation(Base):
    __tablename__ = "slack_installations"
    __table_args__ = (
        Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    enterprise_url: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    team_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_token: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    bot_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    bot_scopes: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    bot_refresh_token: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    user_id: Mapped[str] = mapped_column(String(32))
    user_token: Mapped[str | None] = mapped_column(String(200), nullable=True)
    user_scopes: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    user_refresh_token: Mapped[str | None] = mapped_column(String(200), nullable=True)
    user_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    incoming_webhook_url: Mapped[str | None] = mapped_column(String(200), nullable=True)
    incoming_webhook_channel: Mapped[str | None] = mapped_column(String(200), nullable=True)
    incoming_webhook_channel_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    incoming_webhook_configuration_url: Mapped[str | None] = mapped_column(String(200), nullable=True)
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    token_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    installed_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


class SlackOAuthState(Base):
    __tablename__ = "slack_oauth_states"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(200))
    expire_at: Mapped[datetime] = mapped_column(DateTime)
