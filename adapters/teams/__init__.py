"""Microsoft Teams adapter (Bot Framework). Import-light: botbuilder loads inside `mount`.

`mount(app, bot, settings, outbox)` adds `/api/messages` to the aiohttp app, registers the
"teams" processor with the app's durable inbox (adapters/teams/inbox.py: activities are written
before they are answered, and processed by the inbox worker) and the "teams" sender in the
outbox, so jobs' effects reach Teams proactively. `REGISTRATION` is its entry in
adapters/base.py's list (settings model: adapters/teams/settings.py).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from adapters.base import Registration
from adapters.teams import settings as _settings

if TYPE_CHECKING:
    from adapters.server import Outbox
    from bot.config import Settings
    from bot.core import Bot

log = logging.getLogger(__name__)
ROUTE = "/api/messages"


def mount(app: Any, bot: "Bot", settings: "Settings", outbox: "Outbox") -> Any:
    """Serve Teams on `app`; returns the TeamsTurn (tests and benchmarks reach in through it)."""
    import asyncio

    from adapters.server import pipeline_key
    from adapters.teams.delivery import Delivery, run_sync
    from adapters.teams.http import build_adapter, handler
    from adapters.teams.inbox import TeamsInbox
    from adapters.teams.turn import TeamsTurn

    if settings.teams_app_id and not settings.teams_app_password:
        raise ValueError("Teams: MicrosoftAppId is set but MicrosoftAppPassword is not (the bot could not answer); "
                         "set the client secret of the Azure bot's app registration")
    if not settings.teams_app_id:
        log.warning("Teams: no MicrosoftAppId configured: /api/messages accepts UNAUTHENTICATED requests. "
                    "This is for local testing only (Bot Framework Emulator, mocks); never expose it.")
    else:
        log.info("Teams: /api/messages for app %s (%s)", settings.teams_app_id,
                 f"single-tenant {settings.teams_app_tenant_id}" if settings.teams_app_tenant_id else "multi-tenant")
    adapter = build_adapter(settings)
    delivery = Delivery(bot.services, adapter, settings.teams_app_id)
    turn = TeamsTurn(bot, delivery)
    pipeline = app[pipeline_key()]
    inbox = TeamsInbox(adapter, turn, pipeline)
    pipeline.register("teams", inbox.process_row)
    app.router.add_post(ROUTE, handler(adapter, inbox.accept, inbox.wake))
    loops: dict[str, asyncio.AbstractEventLoop] = {}

    async def remember_loop(_app: Any) -> None:
        loops["main"] = inbox.loop = asyncio.get_running_loop()
        inbox.express.start()

    async def finish_turns(_app: Any) -> None:
        """After the inbox worker stopped (adapters/server.py): what was written is processed."""
        await asyncio.to_thread(inbox.express.stop)
        await inbox.drain(timeout=10)

    app.on_startup.append(remember_loop)
    app.on_cleanup.append(finish_turns)

    def send(effects: Any) -> None:
        items = list(effects)
        run_sync(loops.get("main"), lambda: delivery.deliver(items))

    outbox.register("teams", send)
    if bot.services.deliver is None:
        bot.services.deliver = outbox.send
    app[turn_key()] = turn
    app[inbox_key()] = inbox
    return turn


def turn_key() -> Any:
    """The aiohttp app key under which `mount` leaves its TeamsTurn."""
    from aiohttp import web

    from adapters.teams.turn import TeamsTurn

    global _TURN_KEY
    if _TURN_KEY is None:
        _TURN_KEY = web.AppKey("teams_turn", TeamsTurn)
    return _TURN_KEY


def inbox_key() -> Any:
    """The aiohttp app key under which `mount` leaves its TeamsInbox (tests drain it)."""
    from aiohttp import web

    from adapters.teams.inbox import TeamsInbox

    global _INBOX_KEY
    if _INBOX_KEY is None:
        _INBOX_KEY = web.AppKey("teams_inbox", TeamsInbox)
    return _INBOX_KEY


_TURN_KEY: Any = None
_INBOX_KEY: Any = None


REGISTRATION = Registration(platform="teams", title=_settings.TITLE, settings_model=_settings.TeamsSettings,
                            configured=_settings.configured, describe=_settings.describe, mount=mount)
