"""Teams message round trip through the real HTTP pipeline, against a bare botbuilder echo bot.

Both servers run botbuilder's CloudAdapter on loopback aiohttp and answer through a local
mock Bot Connector (tests/teams_mock.py). Causette's path: `/api/messages` from
adapters/server.py → inbox write → answer → claim (adapters/express.py) → parse, dedup
check, core (`help` in a personal chat, answered with an Adaptive Card) whose transaction
writes the claim and the row's "done" → render → paced send. The bare bot echoes the text.
One round trip = activity POSTed → reply received by the mock connector. The organisation
(BENCH_PEOPLE people, default 100,000) is loaded first. Requests alternate between the two
servers so both see the same machine state. Database: a temporary SQLite file, or
BENCH_DATABASE_URL (an empty, disposable database).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.clock import SystemClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from handlers import build_registry
from store.db import Database
from tests.teams_mock import MockConnector, personal_message, serve_locally

TENANT = "bench-teams-tenant"
WARMUP = 30
ROUNDS = 400
USERS = 50


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _load_org(db: Database, n_people: int) -> str:
    try:
        from bench.org import build_org
    except ImportError:  # pragma: no cover - the shared builder is not there yet
        return _small_org(db, n_people)
    build_org(db, TENANT, n_people, platform="teams")
    return "bench.org.build_org"


def _small_org(db: Database, n_people: int) -> str:
    from sqlalchemy import insert

    from store.models.core import Person, Workspace
    from store.models.base import utcnow

    now = utcnow()
    with db.engine.begin() as conn:
        conn.execute(insert(Workspace.__table__), [{"id": TENANT, "platform": "teams", "name": "bench", "default_locale": "en",
                                                    "expertise_version": 0, "created_at": now}])
        for start in range(0, n_people, 10000):
            conn.execute(insert(Person.__table__), [
                {"tenant": TENANT, "external_id": f"u{i}", "handle": f"user{i}", "display_name": f"User {i}", "email": "",
                 "title": "", "department": "", "site": "", "tz": "", "languages": "", "locale": None, "avatar_url": "",
                 "is_bot": False, "active": True, "accepts_mentions": True, "profile_synced_at": None,
                 "created_at": now, "updated_at": now} for i in range(start, min(n_people, start + 10000))])
    return "local bulk insert"


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner, base = await serve_locally(app)
    return runner, base + "api/messages"


def _bare_app() -> web.Application:
    """The reference: botbuilder's own CloudAdapter and an echo bot, nothing else."""
    from types import SimpleNamespace

    from botbuilder.core import ActivityHandler, TurnContext
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

    class Echo(ActivityHandler):
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            await turn_context.send_activity(turn_context.activity.text)

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(SimpleNamespace(APP_ID="", APP_PASSWORD="")))
    echo = Echo()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, echo)  # type: ignore[return-value]

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


async def _round_trip(http: aiohttp.ClientSession, url: str, body: dict[str, Any], mock: MockConnector, expected: int) -> float:
    started = time.perf_counter()
    async with http.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}) as resp:
        await resp.read()
        if resp.status not in (200, 201):
            raise RuntimeError(f"{url} answered {resp.status}")
    await mock.wait_for(expected, timeout=30)
    return (time.perf_counter() - started) * 1000


async def _measure(bot: Bot, settings: Settings) -> tuple[list[float], list[float]]:
    from adapters.server import Outbox, build_app

    mock = MockConnector()
    service = await mock.start()
    ours, ours_url = await _serve(build_app(bot, settings, Outbox()))  # type: ignore[arg-type]
    bare, bare_url = await _serve(_bare_app())
    teams_ms: list[float] = []
    bare_ms: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            for i in range(WARMUP + ROUNDS):
                user = f"u{(i * 7919) % USERS}"
                expected = len(mock.messages()) + 1
                t = await _round_trip(http, ours_url, personal_message(service, TENANT, user, "help", f"ours-{i}"), mock, expected)
                b = await _round_trip(http, bare_url, personal_message(service, TENANT, user, "help", f"bare-{i}"), mock, expected + 1)
                if i >= WARMUP:
                    teams_ms.append(t)
                    bare_ms.append(b)
    finally:
        await ours.cleanup()
        await bare.cleanup()
        await mock.stop()
    replies = [c for c in mock.messages() if c.activity_id.startswith("ours-")]
    if len(replies) != WARMUP + ROUNDS or not all(c.body.get("attachments") for c in replies):
        raise RuntimeError("Causette did not answer every round trip with a card")
    return teams_ms, bare_ms


def run(report: Any) -> None:
    import logging

    logging.getLogger("adapters.teams").setLevel(logging.ERROR)
    n_people = report.people()
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = None if url else tempfile.TemporaryDirectory()
    url = url or f"sqlite:///{Path(tmp.name) / 'bench_teams.db'}"  # type: ignore[union-attr]
    db = Database(url)
    try:
        db.upgrade()
        started = time.perf_counter()
        source = _load_org(db, n_people)
        print(f"# org of {n_people} people loaded in {time.perf_counter() - started:.1f} s ({source})", flush=True)
        settings = Settings(database_url=url, teams_enabled=True, teams_app_id="", teams_app_password="", default_locale="en")
        services = Services(settings=settings, db=db, prompts=Prompts.load(), clock=SystemClock(), registry=build_registry())
        teams_ms, bare_ms = asyncio.run(_measure(Bot(services), settings))
    finally:
        db.dispose()
        if tmp is not None:
            tmp.cleanup()
    report.figure("teams_round_trips", len(teams_ms))
    report.figure("teams_reply_p50_ms", statistics.median(teams_ms))
    report.figure("teams_reply_p99_ms", _percentile(teams_ms, 0.99))
    report.figure("bare_botbuilder_p50_ms", statistics.median(bare_ms))
    report.figure("bare_botbuilder_p99_ms", _percentile(bare_ms, 0.99))
    report.figure("teams_vs_bare_p99", _percentile(teams_ms, 0.99) / _percentile(bare_ms, 0.99))
