"""Slack slash-command round trip through the real HTTP stack, against a bare Bolt app.

Causette: the server of adapters/server.py (aiohttp + Bolt AsyncApp, signature check) acks,
then a worker deduplicates, runs the core on the BENCH_PEOPLE organisation (default
100,000 people, bench/org.py) and answers through `response_url` on a local mock of
Slack's Web API (tests/slack_mock.py). The bare app is a Bolt AsyncApp with the same
settings whose only listener acks. Both are fed the same signed POSTs by the same client
process over keep-alive connections, one after the other, the order swapped every round (so
neither always follows the other's request), each on an idle server (the worker has drained
the previous command, so neither competes with a reply's work); ROUNDS samples each after
WARMUP rounds, so the p99 rests on 20 samples rather than 3.

  slack_ack_*    signed POST sent → HTTP 200 received by the client
  slack_reply_*  ack received → the reply reached the mock API
  slack_ack_busy_*  the same for channel messages (Events API) sent one after the other
                    while the inbox worker is still indexing the earlier ones: the ack's inbox
                    write competes with the workers' transactions (target: always under 50 ms)
Commands cycle through `help`, `profile` and `who knows <skill>` from random people.
Database: a temporary SQLite file, or BENCH_DATABASE_URL (an empty, disposable database).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from adapters.server import Outbox, build_app
from adapters.slack.runtime import RUNTIME_KEY
from bench.org import build_org
from bot.clock import SystemClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from handlers import build_registry
from store.db import Database
from tests.harness.slack import BOT_TOKEN, SECRET, sign
from tests.slack_mock import LoopThread, SlackMock

TENANT = "TBENCH"
WARMUP = 100
ROUNDS = 2000
BUSY_EVENTS = 300
SPEC = Path(__file__).resolve().parent.parent / "tests" / "specs" / "slack-web-openapi-v2.json"
COMMANDS = ("help", "profile", "who knows kubernetes", "who knows pricing")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _bare_bolt(settings: Settings) -> web.Application:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(signing_secret=settings.slack_signing_secret, process_before_response=True,
                    client=AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url))

    @bolt.command(settings.command_name)
    async def only_ack(ack: Any) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _client_process(conn: Any, ports: dict[str, int]) -> None:
    """Plays Slack in its own process (so the client never waits for the server's GIL):
    keep-alive HTTP/1.1 connections; answers (status, sent, acked) in CLOCK_MONOTONIC."""
    import http.client

    conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, port in ports.items()}
    while True:
        job = conn.recv()
        if job is None:
            break
        name, fields = job
        is_event = fields.get("type") == "event_callback"
        body = json.dumps(fields).encode() if is_event else urlencode(fields).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json" if is_event else "application/x-www-form-urlencoded",
                   "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, ts)}
        started = time.monotonic()
        conns[name].request("POST", "/slack/events", body=body, headers=headers)
        resp = conns[name].getresponse()
        resp.read()
        conn.send((resp.status, started, time.monotonic()))


def run(report: Any) -> None:
    n_people = report.people()
    tmp = tempfile.TemporaryDirectory()
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp.name}/bench_slack.db"
    db = Database(url)
    db.upgrade()
    started = time.perf_counter()
    build_org(db, TENANT, n_people, platform="slack")
    report.figure("slack_org_load_s", time.perf_counter() - started)

    loop = LoopThread()
    mock = SlackMock(SPEC, team=TENANT)
    loop.run(mock.start())
    mock.channels["CBENCH"] = {"id": "CBENCH", "name": "bench", "is_private": False}
    settings = Settings(database_url=url, slack_signing_secret=SECRET, slack_bot_token=BOT_TOKEN, slack_api_url=mock.api_url)
    services = Services(settings=settings, db=db, prompts=Prompts.load(), clock=SystemClock(), registry=build_registry())
    app = build_app(Bot(services), settings, Outbox())
    runtime = app[RUNTIME_KEY]  # type: ignore[index]
    causette_runner, causette_port = loop.run(_serve(app))  # type: ignore[arg-type]
    bare_runner, bare_port = loop.run(_serve(_bare_bolt(settings)))
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    client = ctx.Process(target=_client_process, args=(child, {"causette": causette_port, "bare": bare_port}), daemon=True)
    client.start()

    def post(name: str, fields: dict[str, str]) -> tuple[float, float]:
        parent.send((name, fields))
        status, sent, acked = parent.recv()
        assert status == 200, status
        return sent, acked

    rng = random.Random(7)
    ack_ms: list[float] = []
    bare_ms: list[float] = []
    reply_ms: list[float] = []
    by_command: dict[str, list[float]] = {c: [] for c in COMMANDS}
    replies = 0
    for i in range(WARMUP + ROUNDS):
        loop.run(runtime.adapter.drain())  # both apps are timed on an idle server
        user = f"u{rng.randrange(n_people)}"
        fields = {"team_id": TENANT, "channel_id": "CBENCH", "channel_name": "bench", "user_id": user, "user_name": user,
                  "command": settings.command_name, "text": COMMANDS[i % len(COMMANDS)], "trigger_id": f"{i}.t",
                  "response_url": mock.response_url(f"r{i}")}
        if i % 2:
            sent, bare_done = post("bare", fields)
            sent_c, acked = post("causette", fields)
        else:
            sent_c, acked = post("causette", fields)
        replies += 1
        if not mock.wait_for(lambda calls, n=replies: sum(c.method == "response_url" for c in calls) >= n, timeout=120):
            raise RuntimeError(f"no reply to {fields['text']!r} within 120 s")
        answered = mock.of("response_url")[-1].at
        if not i % 2:  # the bare app is timed on an idle server too: after the command's work
            loop.run(runtime.adapter.drain())
            sent, bare_done = post("bare", fields)
        if i >= WARMUP:
            bare_ms.append((bare_done - sent) * 1000)
            ack_ms.append((acked - sent_c) * 1000)
            reply_ms.append((answered - acked) * 1000)
            by_command[fields["text"]].append((answered - acked) * 1000)
    busy_ms: list[float] = []
    for i in range(BUSY_EVENTS):  # no drain: the workers index the earlier messages meanwhile
        user = f"u{rng.randrange(n_people)}"
        event = {"type": "message", "channel": "CBENCH", "channel_type": "channel", "user": user,
                 "text": f"status {i}: the kubernetes upgrade and the pricing page", "ts": f"{1764000000 + i}.000100"}
        sent, acked = post("causette", {"token": "x", "team_id": TENANT, "api_app_id": "ABENCH", "type": "event_callback",
                                        "event_id": f"EvBUSY{i}", "event_time": int(time.time()), "event": event})
        busy_ms.append((acked - sent) * 1000)
    loop.run(runtime.adapter.drain(timeout=120))
    assert not mock.violations, mock.violations

    parent.send(None)
    client.join(10)
    loop.run(runtime.adapter.drain())
    loop.run(causette_runner.cleanup())
    loop.run(bare_runner.cleanup())
    loop.run(mock.stop())
    loop.stop()
    db.dispose()
    tmp.cleanup()

    report.figure("slack_round_trips", len(ack_ms))
    report.figure("slack_ack_p50_ms", statistics.median(ack_ms))
    report.figure("slack_ack_p99_ms", _percentile(ack_ms, 0.99))
    report.figure("bare_bolt_ack_p50_ms", statistics.median(bare_ms))
    report.figure("bare_bolt_ack_p99_ms", _percentile(bare_ms, 0.99))
    report.figure("slack_ack_vs_bare_p99", _percentile(ack_ms, 0.99) / _percentile(bare_ms, 0.99))
    report.figure("slack_ack_busy_p50_ms", statistics.median(busy_ms))
    report.figure("slack_ack_busy_p99_ms", _percentile(busy_ms, 0.99))
    report.figure("slack_reply_p50_ms", statistics.median(reply_ms))
    report.figure("slack_reply_p99_ms", _percentile(reply_ms, 0.99))
    for command, values in by_command.items():  # where the reply time goes: the core's commands
        report.figure(f"slack_reply_p99_ms[{command}]", _percentile(values, 0.99))
