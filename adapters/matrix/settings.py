"""Matrix's settings (MATRIX_* environment variables) and how `check-config` describes them.

Pydantic only: `bot.config.Settings` is composed from this model (adapters/base.py lists it),
so importing it never imports matrix-nio.
"""
from __future__ import annotations

import re

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Status

TITLE = "Matrix"
_USER_ID = re.compile(r"^@[^:\s]+:[^\s]+$")


class MatrixSettings(BaseSettings):
    """The bot's account on a homeserver: its user id with an access token (and the device id
    that token belongs to) or a password (used once: the token and device id it gives are
    kept in the encryption store), and where that store lives."""

    model_config = SettingsConfigDict(env_prefix="CAUSETTE_", extra="ignore", populate_by_name=True)

    matrix_homeserver: str = Field(default="", validation_alias=AliasChoices("MATRIX_HOMESERVER"))
    matrix_user_id: str = Field(default="", validation_alias=AliasChoices("MATRIX_USER_ID"))
    matrix_access_token: str = Field(default="", repr=False, validation_alias=AliasChoices("MATRIX_ACCESS_TOKEN"))
    matrix_password: str = Field(default="", repr=False, validation_alias=AliasChoices("MATRIX_PASSWORD"))
    matrix_device_id: str = Field(default="", validation_alias=AliasChoices("MATRIX_DEVICE_ID"))
    # The bot's encryption keys, its device identity and sync state: outside the repository,
    # kept across restarts (lose it and the bot can no longer read its encrypted rooms' history).
    matrix_store_path: str = Field(default="", validation_alias=AliasChoices("MATRIX_STORE_PATH"))
    matrix_encryption: bool = Field(default=True, validation_alias=AliasChoices("MATRIX_ENCRYPTION"))
    # Homeservers whose people the bot answers and whose rooms it joins (default: its own).
    matrix_allowed_servers: str = Field(default="", validation_alias=AliasChoices("MATRIX_ALLOWED_SERVERS"))
    matrix_command_prefix: str = Field(default="!causette", validation_alias=AliasChoices("MATRIX_COMMAND_PREFIX"))

    @field_validator("matrix_homeserver", mode="before")
    @classmethod
    def _homeserver(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() and not re.match(r"https?://[^/\s]+", value.strip()):
            raise ValueError("is not an http(s) URL")
        return value.strip().rstrip("/") if isinstance(value, str) else value

    @field_validator("matrix_user_id", mode="before")
    @classmethod
    def _user_id(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() and not _USER_ID.match(value.strip()):
            raise ValueError("is not a Matrix user id like @causette:example.org")
        return value.strip() if isinstance(value, str) else value

    @field_validator("matrix_command_prefix", mode="before")
    @classmethod
    def _prefix(cls, value: object) -> object:
        if isinstance(value, str) and (not value.strip() or any(ch.isspace() for ch in value.strip())):
            raise ValueError("must be one word, like !causette")
        return value.strip() if isinstance(value, str) else value


def server_name(user_id: str) -> str:
    """`example.org` of `@causette:example.org` (the workspace: Causette's tenant on Matrix)."""
    return user_id.partition(":")[2]


def allowed_servers(s: MatrixSettings) -> frozenset[str]:
    """The homeservers in MATRIX_ALLOWED_SERVERS (commas or spaces), else the bot's own."""
    listed = {part.strip().lower() for part in re.split(r"[,\s]+", s.matrix_allowed_servers or "") if part.strip()}
    return frozenset(listed or ({server_name(s.matrix_user_id).lower()} if s.matrix_user_id else set()))


def configured(s: MatrixSettings) -> bool:
    """Enough to serve Matrix: a homeserver, the bot's user id and a way to log in."""
    return bool(s.matrix_homeserver and s.matrix_user_id and (s.matrix_access_token or s.matrix_password))


def missing(s: MatrixSettings) -> list[str]:
    """What `mount` would refuse to start without (an empty list: nothing)."""
    lacks = []
    if s.matrix_encryption and not s.matrix_store_path:
        lacks.append("MATRIX_STORE_PATH (the encryption store: a directory outside the repository, kept across restarts)")
    if s.matrix_access_token and not s.matrix_device_id and not s.matrix_store_path:
        lacks.append("MATRIX_DEVICE_ID (the device the access token belongs to)")
    return lacks


def describe(s: MatrixSettings) -> Status:
    """How `python app.py serve` would serve Matrix, or what is missing (secrets never shown)."""
    if configured(s):
        login = "access token (MATRIX_ACCESS_TOKEN)" if s.matrix_access_token else "password, once (MATRIX_PASSWORD)"
        servers = ", ".join(sorted(allowed_servers(s)))
        detail = (f"{s.matrix_user_id} on {s.matrix_homeserver}, {login}, "
                  f"{'end-to-end encryption on' if s.matrix_encryption else 'encryption off'}, "
                  f"answers people of {servers}, prefix {s.matrix_command_prefix}")
        lacks = missing(s)
        return Status(TITLE, True, detail + (", but needs " + "; ".join(lacks) if lacks else ""))
    if s.matrix_homeserver or s.matrix_user_id or s.matrix_access_token or s.matrix_password:
        return Status(TITLE, False, "incomplete: needs MATRIX_HOMESERVER, MATRIX_USER_ID and MATRIX_ACCESS_TOKEN "
                                    "or MATRIX_PASSWORD")
    return Status(TITLE, False, "not configured")
