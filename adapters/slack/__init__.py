"""Slack adapter. Import-light on purpose: Bolt and slack_sdk load only inside `mount`,
which `adapters/server.py` calls when Slack is configured.

    mount(app, bot, settings, outbox)

adds `/slack/events` (Events API, slash command, interactivity, shortcuts, options) to the
aiohttp app, `/slack/install` and `/slack/oauth_redirect` for multi-workspace OAuth, starts
Socket Mode instead when `SLACK_APP_TOKEN` is set, and registers the "slack" sender in
the outbox for effects produced by jobs. `REGISTRATION` is its entry in adapters/base.py's
list (settings model: adapters/slack/settings.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import Registration
from adapters.slack import settings as _settings

if TYPE_CHECKING:
    from adapters.slack.runtime import SlackRuntime
    from bot.config import Settings
    from bot.core import Bot


def mount(app: Any, bot: "Bot", settings: "Settings", outbox: Any, *, pace_seconds: float = 1.0) -> "SlackRuntime":
    from adapters.slack.runtime import SlackRuntime

    runtime = SlackRuntime.build(bot, settings, pace_seconds=pace_seconds)
    runtime.attach(app, outbox)
    return runtime


REGISTRATION = Registration(platform="slack", title=_settings.TITLE, settings_model=_settings.SlackSettings,
                            configured=_settings.configured, describe=_settings.describe, mount=mount)
