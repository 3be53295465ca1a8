"""`python app.py serve`: one aiohttp server for every configured messenger.

Each platform package exposes `mount(app, bot, settings, outbox) -> None`, adding its
routes (Slack `/slack/events`, Teams `/api/messages`) and registering a sender in
`outbox` so effects produced by jobs (digests, notifications) reach the right platform.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Callable, Sequence

from bot.config import Settings
from bot.core import Bot
from bot.types import Effect, FetchHistory, Outbound

log = logging.getLogger(__name__)
Sender = Callable[[Sequence[Effect]], None]


class Outbox:
    """Routes effects to the adapter of their platform (a job's output may span several)."""

    def __init__(self) -> None:
        self.senders: dict[str, Sender] = {}

    def register(self, platform: str, sender: Sender) -> None:
        self.senders[platform] = sender

    def send(self, effects: Sequence[Effect]) -> None:
        """Deliver to every platform; then re-raise the first failure, so a caller that records
        deliveries (digests) leaves the row pending instead of marking it sent."""
        failure: Exception | None = None
        by_platform: dict[str, list[Effect]] = defaultdict(list)
        for effect in effects:
            target = effect.to if isinstance(effect, Outbound) else effect.conversation if isinstance(effect, FetchHistory) else None
            platform = getattr(target, "platform", "")
            by_platform[platform].append(effect)
        for platform, items in by_platform.items():
            sender = self.senders.get(platform)
            if sender is None:
                log.warning("no adapter for platform %r: %d effect(s) dropped", platform, len(items))
                continue
            try:
                sender(items)
            except Exception as exc:  # noqa: BLE001 - one platform failing must not stop the others
                log.exception("delivery to %s failed", platform)
                failure = failure or exc
        if failure is not None:
            raise failure


_OUTBOX_KEY: list[object] = []


def outbox_key() -> "object":
    """The typed aiohttp key of the app's Outbox (plain string keys warn, and warnings fail tests)."""
    from aiohttp import web

    if not _OUTBOX_KEY:
        _OUTBOX_KEY.append(web.AppKey("outbox", Outbox))
    return _OUTBOX_KEY[0]


def start_clock(bot: Bot, outbox: Outbox, every_seconds: int = 30) -> object:
    """APScheduler as a clock only: it ticks; the jobs claim their work in the database."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    def tick() -> None:
        try:
            outbox.send(bot.run_all_jobs())
        except Exception:  # noqa: BLE001 - already logged per platform; the next tick goes on
            log.warning("some effects of this tick were not delivered")

    scheduler.add_job(tick, "interval", seconds=every_seconds,
                      id="causette-tick", max_instances=1, coalesce=True, misfire_grace_time=every_seconds)
    scheduler.start()
    return scheduler


def build_app(bot: Bot, settings: Settings, outbox: Outbox | None = None) -> "object":
    from aiohttp import web

    outbox = outbox or Outbox()
    if bot.services.deliver is None:
        bot.services.deliver = outbox.send
    app = web.Application(client_max_size=1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        ok = await asyncio.to_thread(_db_ok, bot)
        return web.json_response({"status": "ok" if ok else "degraded"}, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
    app[outbox_key()] = outbox
    if settings.slack_configured:
        from adapters.slack import mount as mount_slack

        mount_slack(app, bot, settings, outbox)
    if settings.teams_configured:
        from adapters.teams import mount as mount_teams

        mount_teams(app, bot, settings, outbox)
    return app


def _db_ok(bot: Bot) -> bool:
    from sqlalchemy import text

    try:
        with bot.services.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001
        log.exception("health check: database unreachable")
        return False


def serve(bot: Bot, settings: Settings) -> int:
    from aiohttp import web

    outbox = Outbox()
    app = build_app(bot, settings, outbox)
    if not (settings.slack_configured or settings.teams_configured):
        log.warning("no Slack or Teams credentials: serving /healthz only (use `python app.py console` to try the bot)")
    scheduler = start_clock(bot, outbox)
    try:
        web.run_app(app, host=settings.host, port=settings.port)  # type: ignore[arg-type]
    finally:
        scheduler.shutdown(wait=False)  # type: ignore[attr-defined]
    return 0
