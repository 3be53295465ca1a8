"""Configuration. Built once in app.py (environment + command-line flags) and passed down."""
from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing import Annotated


def _csv(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]  # type: ignore[union-attr]


class Settings(BaseSettings):
    """Every knob of Causette. Environment names are given in the README."""

    model_config = SettingsConfigDict(env_prefix="CAUSETTE_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///causette.db",
        validation_alias=AliasChoices("DATABASE_URL", "CAUSETTE_DATABASE_URL"),
    )
    default_locale: str = "en"
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    aliases_file: str = ""
    command_name: str = "/causette"

    # Limits and budgets
    max_argument_chars: int = 2000
    retention_days: int = 180
    notify_daily_cap: int = 10
    notify_group_minutes: int = 5
    quiet_hours: str = "20:00-08:00"
    kudos_daily_allowance: int = 5
    ideas_daily_limit: int = 5
    expert_weekly_cap: int = 5
    help_escalation_hours: float = 4.0
    skill_stale_days: int = 180
    digest_grace_hours: float = 6.0

    # HTTP serving
    port: int = Field(default=3000, validation_alias=AliasChoices("PORT", "CAUSETTE_PORT"))
    host: str = "0.0.0.0"

    # Slack
    slack_bot_token: str = Field(default="", validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str = Field(default="", validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: str = Field(default="", validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_client_id: str = Field(default="", validation_alias=AliasChoices("SLACK_CLIENT_ID"))
    slack_client_secret: str = Field(default="", validation_alias=AliasChoices("SLACK_CLIENT_SECRET"))
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL"))

    # Microsoft Teams
    teams_app_id: str = Field(default="", validation_alias=AliasChoices("MicrosoftAppId", "MICROSOFT_APP_ID"))
    teams_app_password: str = Field(
        default="", validation_alias=AliasChoices("MicrosoftAppPassword", "MICROSOFT_APP_PASSWORD")
    )
    teams_app_tenant_id: str = Field(
        default="", validation_alias=AliasChoices("MicrosoftAppTenantId", "MICROSOFT_APP_TENANT_ID")
    )
    teams_enabled: bool = False

    def model_post_init(self, __context: object) -> None:
        self.admins = _csv(self.admins)

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_app_token or (self.slack_signing_secret and (self.slack_bot_token or self.slack_client_id)))

    @property
    def teams_configured(self) -> bool:
        return bool(self.teams_app_id or self.teams_enabled)
