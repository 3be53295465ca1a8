"""`python app.py serve`: one aiohttp server for every configured messenger.

Each platform package exposes `mount(app, bot, settings, outbox) -> None`, adding its
routes (Slack `/slack/events`, Teams `/api/messages`) and registering a sender in
`outbox` so effects produced by jobs (digests, notifications) reach the right platform.

Deliveries go through the durable inbox (`Pipeline`): an adapter writes each one with
`Pipeline.put` before acknowledging it and registers a processor that does the work; the
pipeline's InboxWorker drains the inbox in background threads, and drains what a crashed
process left behind when the server starts.

`/healthz` says the process is alive; `/readyz` says it can take traffic (database reachable,
inbox backlog under `READY_BACKLOG`); `/metrics` is in the Prometheus text format.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from datetime import datetime
from typing import Callable, Sequence

from adapters.base import served, titles
from bot import outbox as durable_outbox
from bot.config import Settings
from bot.core import Bot
from bot.delivery import DeliveryFailed, failed_effects
from bot.inbox import InboxWorker, Processor
from bot.metrics import Metrics
from bot.types import Effect, effect_target
from store import inbox as inbox_store
from store import outbox as outbox_store
from store.db import Database, WouldWait

log = logging.getLogger(__name__)
Sender = Callable[[Sequence[Effect]], None]
READY_BACKLOG = 5000  # deliveries waiting: past this, /readyz asks the balancer to send traffic elsewhere


class Outbox:
    """Routes effects to the adapter of their platform (a job's output may span several)."""

    def __init__(self) -> None:
        self.senders: dict[str, Sender] = {}

    def register(self, platform: str, sender: Sender) -> None:
        self.senders[platform] = sender

    def send(self, effects: Sequence[Effect]) -> None:
        """Deliver to every platform; then raise DeliveryFailed naming every effect that could not
        be delivered for now (a sender's DeliveryFailed names its own; a sender that failed
        otherwise counts all it was given), so a caller that records deliveries (digests, the
        durable outbox) retries those alone. An effect for a platform nobody serves is dropped."""
        failures: list[DeliveryFailed] = []
        by_platform: dict[str, list[Effect]] = defaultdict(list)
        for effect in effects:
            target = effect_target(effect)
            platform = getattr(target, "platform", "")
            by_platform[platform].append(effect)
        for platform, items in by_platform.items():
            sender = self.senders.get(platform)
            if sender is None:
                log.warning("no adapter for platform %r: %d effect(s) dropped", platform, len(items))
                continue
            try:
                sender(items)
            except DeliveryFailed as exc:
                log.warning("delivery to %s: %s", platform, exc)
                failures.append(DeliveryFailed(str(exc), failed=failed_effects(exc, items), retry_after=exc.retry_after))
            except Exception as exc:  # noqa: BLE001 - one platform failing must not stop the others
                log.exception("delivery to %s failed", platform)
                failures.append(DeliveryFailed(f"{platform}: {type(exc).__name__}", failed=items))
        if failures:
            raise DeliveryFailed.merge(failures)

    def send_or_keep(self, effects: Sequence[Effect], db: Database, now: datetime) -> None:
        """`send`, and what could not be delivered for now goes to the durable outbox, whose
        sweeper retries it (a tick's job effects: nothing else would)."""
        try:
            self.send(effects)
        except DeliveryFailed as exc:
            kept = failed_effects(exc, effects)
            durable_outbox.keep(db, kept, now, exc.retry_after, source="jobs")
            log.warning("%d effect(s) kept in the outbox for a retry", len(kept))


class Pipeline:
    """The durable inbox of one server: where adapters write deliveries before acknowledging
    them, and the worker that processes them."""

    def __init__(self, bot: Bot, *, threads: int = 4, metrics: Metrics | None = None) -> None:
        self.bot = bot
        self.metrics = metrics or Metrics()
        self.processors: dict[str, Processor] = {}
        self.worker = InboxWorker(bot.services.db, bot.services.clock, self.processors, threads=threads,
                                  metrics=self.metrics)
        self.metrics.read_queues_with(self.queue_figures)
        self._ack_writers: dict[int, inbox_store.AckWriter] = {}  # put_now's connections (store/inbox.py)

    def register(self, platform: str, processor: Processor) -> None:
        self.processors[platform] = processor

    def put(self, platform: str, dedupe_key: str, kind: str, payload: str, *, tenant: str = "",
            order_key: str = "", wake: bool = True) -> bool:
        """Write one delivery (durable when this returns) and wake a worker (`wake=False`: the
        caller wakes it once its acknowledgement is written). False for a duplicate (a
        platform retry or a replay): acknowledge it and do nothing more. On SQLite the write
        takes the next write turn, ahead of the workers' transactions waiting for one: a
        request is waiting for it."""
        db = self.bot.services.db
        with db.priority():
            fresh = inbox_store.put(db, platform, dedupe_key, kind, payload, self.bot.services.clock.now(),
                                    tenant=tenant, order_key=order_key)
        if fresh and wake:
            self.worker.wake()
        return fresh

    def put_now(self, platform: str, dedupe_key: str, kind: str, payload: str, *, tenant: str = "",
                order_key: str = "", wake: bool = True) -> bool | None:
        """`put` in the calling thread (the event loop's) when it cannot wait: on SQLite, when the
        write turn is free (no transaction of this process or another holds it), one INSERT of
        a fraction of a millisecond, less than handing it to a thread and back. None when it
        would have waited (nothing written; hand it to a thread) and on PostgreSQL (a network
        round trip is not for the event loop)."""
        db = self.bot.services.db
        if db.dialect != "sqlite":
            return None
        writer = self._ack_writers.get(threading.get_ident())
        if writer is None:  # one per event loop's thread (a server has one)
            writer = self._ack_writers[threading.get_ident()] = inbox_store.AckWriter(db)
        try:
            with db.priority(wait=False):
                fresh = writer.put(platform, dedupe_key, kind, payload, self.bot.services.clock.now(),
                                   tenant=tenant, order_key=order_key)
        except WouldWait:
            return None
        if fresh and wake:
            self.worker.wake()
        return fresh

    def close_writers(self) -> None:
        """Close put_now's connections (a later put_now opens one again)."""
        writers, self._ack_writers = self._ack_writers, {}
        for writer in writers.values():
            writer.close()

    def queue_figures(self) -> dict[str, float]:
        stats = inbox_store.stats(self.bot.services.db, self.bot.services.clock.now())
        return {"causette_inbox_depth": stats.pending, "causette_inbox_oldest_pending_seconds": stats.oldest_pending_seconds,
                "causette_inbox_poison": stats.poison,
                "causette_outbox_backlog": outbox_store.pending_count(self.bot.services.db)}

    def start(self) -> None:
        self._stop_counting = self.metrics.count_api_errors()
        self.worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.worker.stop(timeout)
        self.close_writers()
        stop_counting = getattr(self, "_stop_counting", None)
        if stop_counting is not None:
            stop_counting()


_KEYS: dict[str, object] = {}


def _key(name: str, kind: type) -> "object":
    from aiohttp import web

    if name not in _KEYS:
        _KEYS[name] = web.AppKey(name, kind)
    return _KEYS[name]


def outbox_key() -> "object":
    """The typed aiohttp key of the app's Outbox (plain string keys warn, and warnings fail tests)."""
    return _key("outbox", Outbox)


def pipeline_key() -> "object":
    """The typed aiohttp key of the app's Pipeline (the durable inbox)."""
    return _key("pipeline", Pipeline)


def start_clock(bot: Bot, outbox: Outbox, every_seconds: float = 5) -> object:
    """APScheduler as a clock only: every few seconds `Bot.tick` runs the jobs whose period has
    elapsed (each once per period across every process: the turns are claimed in the database),
    and their effects go out through the outbox (what cannot be delivered for now is kept in
    the durable outbox for a retry)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    def tick() -> None:
        now = bot.services.clock.now()
        try:
            outbox.send_or_keep(bot.tick(now), bot.services.db, now)
        except Exception:  # noqa: BLE001 - already logged per platform; the next tick goes on
            log.warning("some effects of this tick were not delivered")

    scheduler.add_job(tick, "interval", seconds=every_seconds,
                      id="causette-tick", max_instances=1, coalesce=True, misfire_grace_time=max(1, int(every_seconds)))
    scheduler.start()
    return scheduler


def build_app(bot: Bot, settings: Settings, outbox: Outbox | None = None, pipeline: Pipeline | None = None) -> "object":
    from aiohttp import web

    outbox = outbox or Outbox()
    pipeline = pipeline or Pipeline(bot)
    if bot.services.deliver is None:
        bot.services.deliver = outbox.send
    warm_in_background(bot, settings)
    app = web.Application(client_max_size=1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        ready, detail = await asyncio.to_thread(_readiness, bot, pipeline)
        return web.json_response({"status": "ready" if ready else "not ready", **detail}, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(pipeline.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def start_pipeline(_app: web.Application) -> None:
        pipeline.start()

    async def stop_pipeline(_app: web.Application) -> None:
        await asyncio.to_thread(pipeline.stop)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app[outbox_key()] = outbox
    app[pipeline_key()] = pipeline
    for messenger in served(settings):  # adapters/base.py: every messenger whose settings are enough
        messenger.serve_on(app, bot, settings, outbox)
    app.on_startup.append(start_pipeline)
    app.on_cleanup.insert(0, stop_pipeline)
    return app


def warm_in_background(bot: Bot, settings: Settings) -> None:
    """A server never waits seconds for the expertise model or matplotlib inside a worker's
    transaction (on SQLite that would hold back every acknowledgement): both load in background
    threads at start, and lookups answer by spelling until the model is there."""
    import threading

    from bot.charts import warm_up
    from handlers.expertise import meaning
    from handlers.expertise.lookup import ExpertiseCache

    cache = bot.services.extras.setdefault("expertise", ExpertiseCache.for_files(settings.aliases_file))
    cache.background_model = True
    meaning.load_in_background()
    threading.Thread(target=warm_up, name="charts-warm-up", daemon=True).start()


def _readiness(bot: Bot, pipeline: Pipeline) -> tuple[bool, dict[str, object]]:
    if not _db_ok(bot):
        return False, {"database": "unreachable"}
    try:
        stats = inbox_store.stats(bot.services.db, bot.services.clock.now())
    except Exception:  # noqa: BLE001 - reachable a moment ago; say so rather than fail
        log.warning("readiness: inbox figures unavailable")
        return False, {"database": "unreachable"}
    detail: dict[str, object] = {"database": "ok", "inbox_depth": stats.pending, "inbox_poison": stats.poison}
    return stats.pending < READY_BACKLOG, detail


def _db_ok(bot: Bot) -> bool:
    from sqlalchemy import text

    try:
        with bot.services.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # noqa: BLE001
        log.warning("readiness: database unreachable: %s", str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        return False


def serve(bot: Bot, settings: Settings) -> int:
    from aiohttp import web

    outbox = Outbox()
    app = build_app(bot, settings, outbox)
    if not served(settings):
        log.warning("no %s credentials: serving /healthz only (use `python app.py console` to try the bot)", titles())
    scheduler = start_clock(bot, outbox)
    try:
        web.run_app(app, host=settings.host, port=settings.port)  # type: ignore[arg-type]
    finally:
        scheduler.shutdown(wait=False)  # type: ignore[attr-defined]
    return 0
