"""What every messenger is to the rest of Causette, and the one list of them.

A messenger package (`adapters/<platform>/`) exposes `REGISTRATION`, a `Registration`: its
platform name, its own settings model (composed into `bot.config.Settings`), whether those
settings are enough to serve it and how `check-config` says so, and — for a messenger served
over HTTP — `mount(app, bot, settings, outbox)`, which adds its routes and start/stop hooks to
the aiohttp app and registers its sender (`Messenger.deliver`) in the outbox for the jobs'
effects. `REGISTERED` is the list that `bot/config.py`, `adapters/server.py` and `app.py` read:
none of them names a platform.

Importing this module, or the packages it lists, never imports a platform SDK: a package's
`__init__` and settings module hold only pydantic models and plain functions; the SDK loads
inside `mount`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from bot.types import Effect

# Module paths, imported when first read (adapters/<platform>/__init__.py: REGISTRATION).
REGISTERED: tuple[str, ...] = ("adapters.slack", "adapters.teams", "adapters.matrix", "adapters.console")


@dataclass(frozen=True)
class Status:
    """One `check-config` line: `Slack   configured: HTTP events, one workspace (SLACK_BOT_TOKEN)`."""

    title: str
    configured: bool
    detail: str


@runtime_checkable
class Messenger(Protocol):
    """A running messenger, as the outbox sees it: effects for its platform go to `deliver`,
    which tries every effect, then raises `bot.delivery.DeliveryFailed` naming those worth a
    retry. A served messenger starts and stops with the HTTP app (hooks added by its `mount`);
    the console starts and stops its own ticker."""

    platform: str

    def deliver(self, effects: Sequence["Effect"]) -> None: ...


Mount = Callable[[Any, Any, Any, Any], Any]


@dataclass(frozen=True)
class Registration:
    """A messenger as it is registered: `platform` is the `platform` of its refs, inbox rows and
    outbox senders; `title` how people name it. Settings passed to `configured`, `describe` and
    `mount` are the composed `bot.config.Settings`, which include `settings_model`'s fields."""

    platform: str
    title: str
    settings_model: type["BaseSettings"] | None = None
    configured: Callable[[Any], bool] = lambda _settings: False
    describe: Callable[[Any], Status] | None = None
    mount: Mount | None = None

    def serve_on(self, app: Any, bot: Any, settings: Any, outbox: Any) -> Any:
        """Mount this messenger on the HTTP app (adapters/server.py `build_app`)."""
        if self.mount is None:
            raise TypeError(f"{self.title} is not served over HTTP")
        return self.mount(app, bot, settings, outbox)

    def status(self, settings: Any) -> Status:
        if self.describe is not None:
            return self.describe(settings)
        return Status(self.title, self.configured(settings), "")


def registrations() -> list[Registration]:
    """Every registered messenger, in the order of `REGISTERED`."""
    return [importlib.import_module(path).REGISTRATION for path in REGISTERED]


def settings_models() -> list[type["BaseSettings"]]:
    """The messengers' own settings models, for `bot.config.Settings`."""
    return [r.settings_model for r in registrations() if r.settings_model is not None]


def servable() -> list[Registration]:
    """The messengers `python app.py serve` can serve over HTTP."""
    return [r for r in registrations() if r.mount is not None]


def served(settings: Any) -> list[Registration]:
    """The messengers whose settings are enough to serve them: the server mounts these."""
    return [r for r in servable() if r.configured(settings)]


def statuses(settings: Any) -> list[Status]:
    """What `check-config` says of each servable messenger."""
    return [r.status(settings) for r in servable()]


def titles() -> str:
    """"Slack or Teams": the servable messengers, for messages naming them all."""
    names = [r.title for r in servable()]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
