"""Messengers are registered in one list (adapters/base.py): the settings, `check-config` and
the server read it, so a messenger is added by registering it, and none is named elsewhere."""
from __future__ import annotations

import io
import subprocess
import sys
import time
import types
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

import pytest
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import app
from adapters import base
from adapters.base import Messenger, Registration, Status, served
from adapters.console.messenger import ConsoleMessenger
from adapters.server import Outbox, build_app
from bot.config import Settings, compose_settings, load_settings
from bot.context import JobCtx, Services
from bot.core import Bot
from bot.registry import Job, Registry
from bot.types import ConversationRef, Effect, Outbound, Reply, UserRef

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("slack_bolt", "slack_sdk", "botbuilder", "aiohttp", "nio")


def test_the_settings_and_the_list_load_no_platform_sdk() -> None:
    code = ("import sys, bot.config, adapters.base as b; b.registrations(); b.served(bot.config.Settings()); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SDKS!r}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_messenger_is_registered_once_with_its_own_settings() -> None:
    found = base.registrations()
    assert [r.platform for r in found] == ["slack", "teams", "matrix", "console"]
    for registration in found:
        for field, info in (registration.settings_model.model_fields.items() if registration.settings_model else ()):
            assert Settings.model_fields[field].validation_alias == info.validation_alias


@pytest.mark.parametrize("environment, platforms", [
    ({}, []),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, ["slack"]),
    ({"SLACK_APP_TOKEN": "xapp-1"}, ["slack"]),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, []),  # replies could be sent, but nothing would arrive
    ({"MicrosoftAppId": "app", "MicrosoftAppPassword": "pw"}, ["teams"]),
    ({"CAUSETTE_TEAMS_ENABLED": "true", "SLACK_APP_TOKEN": "xapp-1"}, ["slack", "teams"]),
])
def test_the_environment_decides_which_messengers_are_served(monkeypatch: pytest.MonkeyPatch,
                                                              environment: dict[str, str], platforms: list[str]) -> None:
    for field, info in Settings.model_fields.items():
        for name in (info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else ()):
            monkeypatch.delenv(str(name), raising=False)
        monkeypatch.delenv(f"CAUSETTE_{field.upper()}", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert [r.platform for r in served(load_settings())] == platforms


def _paths(application: Any) -> set[str]:
    return {resource.canonical for resource in application.router.resources()}


def test_the_server_mounts_exactly_the_configured_messengers(bot: Bot, settings: Settings) -> None:
    slack = {"slack_signing_secret": "secret", "slack_bot_token": "xoxb-1"}
    assert not {"/slack/events", "/api/messages"} & _paths(build_app(bot, settings))
    only_slack = _paths(build_app(bot, settings.model_copy(update=slack)))
    assert "/slack/events" in only_slack and "/api/messages" not in only_slack
    only_teams = _paths(build_app(bot, settings.model_copy(update={"teams_enabled": True})))
    assert "/api/messages" in only_teams and "/slack/events" not in only_teams
    both = _paths(build_app(bot, settings.model_copy(update={**slack, "teams_enabled": True})))
    assert {"/slack/events", "/api/messages"} <= both


# A messenger of a test's own: its settings model, its check-config line, its mount -----------
class EchoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAUSETTE_", extra="ignore", populate_by_name=True)

    echo_token: str = Field(default="", repr=False, validation_alias=AliasChoices("ECHO_TOKEN"))


class EchoMessenger:
    platform = "echo"

    def __init__(self) -> None:
        self.delivered: list[Effect] = []

    def deliver(self, effects: Sequence[Effect]) -> None:
        self.delivered.extend(effects)


ECHO = EchoMessenger()


def _mount_echo(application: Any, _bot: Bot, _settings: Any, outbox: Outbox) -> Messenger:
    from aiohttp import web

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="echo")

    application.router.add_post("/echo/events", hello)
    outbox.register(ECHO.platform, ECHO.deliver)
    return ECHO


def _echo_status(s: Any) -> Status:
    return Status("Echo", bool(s.echo_token), "token (ECHO_TOKEN)" if s.echo_token else "not configured")


@pytest.fixture
def echo_registered(monkeypatch: pytest.MonkeyPatch) -> type[BaseSettings]:
    module = types.ModuleType("echo_messenger")
    module.REGISTRATION = Registration(  # type: ignore[attr-defined]
        platform="echo", title="Echo", settings_model=EchoSettings,
        configured=lambda s: bool(getattr(s, "echo_token", "")), describe=_echo_status, mount=_mount_echo)
    monkeypatch.setitem(sys.modules, "echo_messenger", module)
    monkeypatch.setattr(base, "REGISTERED", (*base.REGISTERED, "echo_messenger"))
    ECHO.delivered.clear()
    return compose_settings(base.settings_models())


def test_a_registered_messenger_is_configured_served_and_described(
        echo_registered: type[BaseSettings], bot: Bot, settings: Settings,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ECHO_TOKEN", "echo-secret-token-0042")
    with_echo = echo_registered(database_url=settings.database_url)
    assert with_echo.echo_token == "echo-secret-token-0042"  # type: ignore[attr-defined]
    assert "echo-secret-token-0042" not in repr(with_echo)

    outbox = Outbox()
    assert "/echo/events" in _paths(build_app(bot, with_echo, outbox))  # type: ignore[arg-type]
    dm = Outbound(Reply(text="hello"), to=UserRef("echo", "T1", "U1", "Ulla"))
    outbox.send([dm])
    assert ECHO.delivered == [dm]

    assert app.check_config(with_echo) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "  Echo    configured: token (ECHO_TOKEN)" in out
    assert "serves Echo on http://" in out
    assert base.titles() == "Slack, Teams, Matrix or Echo"


# The console: a messenger with a ticker of its own ---------------------------------------------
def test_the_console_ticks_between_start_and_stop(settings: Settings, services: Services) -> None:
    ran: list[object] = []

    def reminder(jctx: JobCtx) -> list[Effect]:
        ran.append(jctx.now)
        to = ConversationRef("console", "T1", "general", "public", name="general")
        return [Outbound(Reply(text="stand-up in five minutes", key="test.reminder"), to=to)]

    registry = Registry()
    registry.job(Job("reminder", timedelta(minutes=1), reminder))
    bot = Bot(Services(settings=settings, db=services.db, prompts=services.prompts, clock=services.clock,
                       registry=registry))
    out = io.StringIO()
    console = ConsoleMessenger(bot, "T1", "sophie", out=out)
    assert isinstance(console, Messenger) and console.platform == "console"
    console.start(tick_seconds=0.02)
    deadline = time.monotonic() + 10
    while "stand-up in five minutes" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    console.stop()
    shown = out.getvalue()  # above the line being typed, which is drawn again under it
    assert shown == "\r\x1b[K[#general] Causette: stand-up in five minutes\nsophie@#general> "
    assert len(ran) == 1  # the fixed clock did not move: once in its period
    services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    time.sleep(0.1)
    assert len(ran) == 1  # stopped: no tick any more
