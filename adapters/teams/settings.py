"""Microsoft Teams' settings (the Bot Framework's MicrosoftApp* variables) and how
`check-config` describes them. Pydantic only: never imports botbuilder."""
from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Status

TITLE = "Teams"


class TeamsSettings(BaseSettings):
    """The Azure bot's app registration, or `CAUSETTE_TEAMS_ENABLED` alone for a local emulator."""

    model_config = SettingsConfigDict(env_prefix="CAUSETTE_", extra="ignore", populate_by_name=True)

    teams_app_id: str = Field(default="", validation_alias=AliasChoices("MicrosoftAppId", "MICROSOFT_APP_ID"))
    teams_app_password: str = Field(
        default="", repr=False, validation_alias=AliasChoices("MicrosoftAppPassword", "MICROSOFT_APP_PASSWORD")
    )
    teams_app_tenant_id: str = Field(
        default="", validation_alias=AliasChoices("MicrosoftAppTenantId", "MICROSOFT_APP_TENANT_ID")
    )
    teams_enabled: bool = False
    # Where the Bot Framework publishes its token signing keys (OpenID metadata); another cloud, or a test's own
    teams_openid_metadata_url: str = ""


def configured(s: TeamsSettings) -> bool:
    return bool(s.teams_app_id or s.teams_enabled)


def describe(s: TeamsSettings) -> Status:
    """How `python app.py` would serve Teams, or that it would not."""
    if s.teams_app_id:
        return Status(TITLE, True, "Bot Framework" + ("" if s.teams_app_password else ", but MicrosoftAppPassword is not set"))
    if s.teams_enabled:
        return Status(TITLE, True, "without credentials (local Bot Framework Emulator only)")
    return Status(TITLE, False, "not configured")
