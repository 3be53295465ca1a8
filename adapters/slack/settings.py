"""Slack's settings (SLACK_* environment variables) and how `check-config` describes them.

Pydantic only: `bot.config.Settings` is composed from this model (adapters/base.py lists it),
so importing it must never import the Slack SDK.
"""
from __future__ import annotations

import re

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Status

TITLE = "Slack"


class SlackSettings(BaseSettings):
    """Bot token (one workspace), OAuth client (any workspace) or app token (Socket Mode)."""

    model_config = SettingsConfigDict(env_prefix="CAUSETTE_", extra="ignore", populate_by_name=True)

    slack_bot_token: str = Field(default="", repr=False, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str = Field(default="", repr=False, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: str = Field(default="", repr=False, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_client_id: str = Field(default="", validation_alias=AliasChoices("SLACK_CLIENT_ID"))
    slack_client_secret: str = Field(default="", repr=False, validation_alias=AliasChoices("SLACK_CLIENT_SECRET"))
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL"))

    @field_validator("slack_api_url", mode="before")
    @classmethod
    def _api_url(cls, value: object) -> object:
        if isinstance(value, str) and not re.match(r"https?://[^/\s]+", value.strip()):
            raise ValueError("is not an http(s) URL")
        return value.strip() if isinstance(value, str) else value


def configured(s: SlackSettings) -> bool:
    """Enough to serve Slack: Socket Mode, or signed HTTP events with a token or an OAuth client."""
    return bool(s.slack_app_token or (s.slack_signing_secret and (s.slack_bot_token or s.slack_client_id)))


def describe(s: SlackSettings) -> Status:
    """How `python app.py` would serve Slack, or what is missing."""
    oauth = bool(s.slack_client_id and s.slack_client_secret)
    if s.slack_app_token:
        lacks = "" if s.slack_bot_token or oauth else ", but SLACK_BOT_TOKEN is not set: replies cannot be sent"
        return Status(TITLE, True, "Socket Mode (SLACK_APP_TOKEN)" + lacks)
    if s.slack_signing_secret and s.slack_client_id:
        lacks = "" if oauth else ", but SLACK_CLIENT_SECRET is not set"
        return Status(TITLE, True, "HTTP events, installed by OAuth in any workspace (SLACK_CLIENT_ID)" + lacks)
    if s.slack_signing_secret and s.slack_bot_token:
        return Status(TITLE, True, "HTTP events, one workspace (SLACK_BOT_TOKEN)")
    if s.slack_bot_token or s.slack_client_id or s.slack_signing_secret:
        return Status(TITLE, False, "incomplete: needs SLACK_SIGNING_SECRET with SLACK_BOT_TOKEN or SLACK_CLIENT_ID, "
                                    "or SLACK_APP_TOKEN")
    return Status(TITLE, False, "not configured")
