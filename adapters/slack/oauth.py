"""Multi-workspace installs: slack_sdk's SQLAlchemy installation and state stores on our
database (tables created by the `slack` Alembic branch), wrapped for Bolt's AsyncApp.

slack_sdk's async SQLAlchemy stores need an async driver; ours is synchronous, so the
sync stores run in a thread (`asyncio.to_thread`): a few short queries per install or
per request authorization.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy.engine import Engine

log = logging.getLogger("adapters.slack")

# Exactly the bot scopes the code uses (deploy/slack/manifest.yaml lists the same).
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "im:write",
    "mpim:history",
    "reactions:read",
    "users:read",
    "users:read.email",
)


def installation_store(client_id: str, engine: Engine) -> SQLAlchemyInstallationStore:
    return SQLAlchemyInstallationStore(client_id=client_id, engine=engine, logger=log)


def state_store(engine: Engine, expiration_seconds: int = 600) -> SQLAlchemyOAuthStateStore:
    return SQLAlchemyOAuthStateStore(expiration_seconds=expiration_seconds, engine=engine, logger=log)


class ThreadedInstallationStore(AsyncInstallationStore):
    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                             is_enterprise_install: Optional[bool] = False) -> Optional[Bot]:
        return await asyncio.to_thread(self.store.find_bot, enterprise_id=enterprise_id, team_id=team_id,
                                       is_enterprise_install=is_enterprise_install)

    async def async_find_installation(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                                      user_id: Optional[str] = None,
                                      is_enterprise_install: Optional[bool] = False) -> Optional[Installation]:
        return await asyncio.to_thread(self.store.find_installation, enterprise_id=enterprise_id, team_id=team_id,
                                       user_id=user_id, is_enterprise_install=is_enterprise_install)

    async def async_delete_bot(self, *, enterprise_id: Optional[str], team_id: Optional[str]) -> None:
        await asyncio.to_thread(self.store.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                                        user_id: Optional[str] = None) -> None:
        await asyncio.to_thread(self.store.delete_installation, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

    async def async_delete_all(self, *, enterprise_id: Optional[str], team_id: Optional[str]) -> None:
        await asyncio.to_thread(self.store.delete_all, enterprise_id=enterprise_id, team_id=team_id)


class ThreadedStateStore(AsyncOAuthStateStore):
    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.store.issue, *args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


def oauth_settings(client_id: str, client_secret: str, engine: Engine, sync_store: SQLAlchemyInstallationStore) -> Any:
    from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings

    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        installation_store=ThreadedInstallationStore(sync_store),
        state_store=ThreadedStateStore(state_store(engine)),
        install_path="/slack/install",
        redirect_uri_path="/slack/oauth_redirect",
    )
