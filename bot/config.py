"""Configuration. Built once in app.py (environment + command-line flags) and passed down.

Values are taken as people type them: a list setting accepts `a,b`, `a b` or a JSON list; a
language `FR` or `fr-FR`; a database URL `postgres://…`. A value that cannot be understood
stops the start with one line naming the variable (`load_settings` raises `ConfigError`),
never a traceback.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Mapping, Sequence

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.base import settings_models

LOCALES = ("en", "fr")
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
UNREADABLE = "(unreadable URL)"
_SEPARATORS = re.compile(r"[,\s]+")


class ConfigError(ValueError):
    """A setting that cannot be understood; its message is one line naming the variable."""


def split_list(value: object) -> object:
    """`a,b`, `a b`, `a, b` or a JSON list `["a","b"]` → ["a", "b"]; lists pass through."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [part for part in _SEPARATORS.split(text) if part]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("starts with '[' but is not a JSON list (write a,b or a b)") from None
        if not isinstance(value, list):
            raise ValueError("is not a JSON list")
    if isinstance(value, (list, tuple)):
        return [str(item).strip() for item in value if str(item).strip()]
    return value


StrList = Annotated[list[str], NoDecode, BeforeValidator(split_list)]


class CoreSettings(BaseSettings):
    """The knobs of Causette itself, whatever the messenger."""

    model_config = SettingsConfigDict(env_prefix="CAUSETTE_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///causette.db",
        validation_alias=AliasChoices("DATABASE_URL", "CAUSETTE_DATABASE_URL"),
    )
    default_locale: str = "en"
    admins: StrList = Field(default_factory=list)
    aliases_file: str = ""
    command_name: str = "/causette"

    # Limits and budgets
    max_argument_chars: int = Field(default=2000, ge=1)
    retention_days: int = Field(default=180, ge=1)
    notify_daily_cap: int = Field(default=10, ge=0)
    notify_group_minutes: int = Field(default=5, ge=0)
    quiet_hours: str = "20:00-08:00"
    kudos_daily_allowance: int = Field(default=5, ge=0)
    ideas_daily_limit: int = Field(default=5, ge=0)
    expert_weekly_cap: int = Field(default=5, ge=0)
    help_escalation_hours: float = Field(default=4.0, ge=0)
    suggestion_escalation_days: int = Field(default=3, ge=1)  # working days before an unanswered suggestion reaches the admins
    skill_stale_days: int = Field(default=180, ge=1)
    digest_grace_hours: float = Field(default=6.0, ge=0)

    # HTTP serving
    port: int = Field(default=3000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "CAUSETTE_PORT"))
    host: str = "0.0.0.0"

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        url = value.strip()
        scheme, sep, _rest = url.partition("://")
        if not sep or not scheme:
            raise ValueError("is not a database URL (use sqlite:///causette.db or postgresql://user:password@host/db)")
        scheme = scheme.lower()
        if scheme == "postgres":  # what Heroku and many hosts print
            url, scheme = "postgresql" + url[len("postgres"):], "postgresql"
        if scheme not in DATABASE_SCHEMES:
            raise ValueError(f"has scheme {scheme!r}, which is not supported (use sqlite:///causette.db or postgresql://user@host/db)")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError("is not a valid database URL") from None
        return url

    @field_validator("default_locale", mode="before")
    @classmethod
    def _locale(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        lang = re.split(r"[-_.]", value.strip().lower(), maxsplit=1)[0]
        if lang not in LOCALES:
            raise ValueError(f"is not a supported language ({' or '.join(LOCALES)})")
        return lang

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet_hours(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        from bot.words import parse_quiet_hours

        try:
            parse_quiet_hours(value)
        except ValueError:
            raise ValueError('is not a time range like "20:00-08:00" (or "off")') from None
        return value.strip()

    @field_validator("command_name", mode="before")
    @classmethod
    def _command(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        name = value.strip()
        if not re.fullmatch(r"/?[\w-]{1,31}", name):
            raise ValueError("is not a command name like /causette")
        return name if name.startswith("/") else "/" + name

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "database_url" else value


def compose_settings(models: Sequence[type[BaseSettings]]) -> type[CoreSettings]:
    """The core settings with each messenger's own model (`models`, in the order of the list)
    mixed in: one object, read from the environment at once, the core's fields first."""

    class Settings(*reversed(models), CoreSettings):  # type: ignore[misc]
        """Every knob of Causette: the core's and each registered messenger's own settings
        (adapters/base.py). Environment names are given in the README."""

    Settings.__qualname__ = "Settings"
    return Settings


Settings = compose_settings(settings_models())


# Secrets (tokens, passwords) are the fields not shown in repr: never echoed, masked when shown.
SECRET_FIELDS = frozenset(name for name, info in Settings.model_fields.items() if not info.repr)


# Loading with one-line errors ----------------------------------------------------------
_FRIENDLY = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false",
    "list_type": "is not a list (write a,b or a b)",
}


def env_name(field: str) -> str:
    """The environment variable people set for `field` (its first alias, or CAUSETTE_<FIELD>)."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"CAUSETTE_{field.upper()}"


def _field_of(loc: object) -> str | None:
    if not isinstance(loc, tuple) or not loc:
        return None
    name = str(loc[0])
    if name in Settings.model_fields:
        return name
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and name.lower() in (str(c).lower() for c in alias.choices):
            return field
    return None


def describe(error: ValidationError, flags: Mapping[str, str] | None = None) -> str:
    """One line naming every problem: `invalid configuration: PORT='abc' is not a whole number`.
    Secrets are never echoed, a database URL only with its password hidden; a value given by
    flag is named by its flag (`flags`: field → flag)."""
    problems = [_problem(e, flags or {}) for e in error.errors()]
    return "invalid configuration: " + "; ".join(dict.fromkeys(problems))


def _problem(error: Any, flags: Mapping[str, str]) -> str:
    field = _field_of(error.get("loc"))
    where = (flags.get(field) or env_name(field)) if field else ".".join(map(str, error.get("loc") or ())) or "a setting"
    value = error.get("input")
    if field in SECRET_FIELDS or isinstance(value, (dict, type(None))):
        shown = ""
    elif field == "database_url" and isinstance(value, str):
        masked = mask_url(value.strip())
        shown = f"={_short(masked)}" if masked != UNREADABLE else ""
    else:
        shown = f"={_short(value)}"
    kind = error.get("type", "")
    if kind == "value_error":
        reason = str(error.get("ctx", {}).get("error") or error.get("msg", ""))
    elif kind in _FRIENDLY:
        reason = _FRIENDLY[kind]
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        reason = _range(field, error)
    else:
        reason = str(error.get("msg", "")).rstrip(".") or "is not valid"
        reason = reason[0].lower() + reason[1:]
    return f"{where}{shown} {reason}"


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    text = " ".join(str(text).split())
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _range(field: str | None, error: Any) -> str:
    if field == "port":
        return "is not a port number (1-65535)"
    ctx = error.get("ctx", {})
    if "ge" in ctx:
        return f"must be {ctx['ge']} or more"
    if "le" in ctx:
        return f"must be {ctx['le']} or less"
    return str(error.get("msg", "is out of range")).lower()


def load_settings(overrides: Mapping[str, object] | None = None, *, flags: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment, `overrides` (field → value, from flags) on top.
    Raises ConfigError with one line naming the variable (or the flag) when a value is wrong."""
    try:
        return Settings(**dict(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(describe(exc, flags)) from None


# Showing what was understood -----------------------------------------------------------
def mask_secret(value: str) -> str:
    """"not set", or "set" with at most the last 4 characters (none for short secrets)."""
    if not value:
        return "not set"
    return f"set (…{value[-4:]})" if len(value) >= 16 else "set"


def mask_url(url: str) -> str:
    """The database URL with its password hidden (also a `password=` query parameter)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - never echo what may hold an unparsed password
        return UNREADABLE
    query = {k: ("hidden" if "password" in k.lower() or "secret" in k.lower() else v) for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True)


def describe_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(environment variable, field, value as it may be shown) for every setting."""
    rows = []
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if field in SECRET_FIELDS:
            shown = mask_secret(value)
        elif field == "database_url":
            shown = mask_url(value)
        elif isinstance(value, list):
            shown = ", ".join(value) if value else "(none)"
        elif value == "":
            shown = "(empty)"
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        rows.append((env_name(field), field, shown))
    return rows
