"""/healthz, /readyz and /metrics of `python app.py serve`."""
from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapters.server import READY_BACKLOG, Pipeline, build_app
from bot.config import Settings
from bot.core import Bot
from store import inbox as inbox_store
from tests.teams_mock import serve_locally


def _families(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_ready_and_metrics_report_the_inbox(bot: Bot, settings: Settings) -> None:
    pipeline = Pipeline(bot, threads=1)
    for n in range(3):
        pipeline.put("test", f"e{n}", "event", "{}")  # no processor: they stay pending
    app = build_app(bot, settings, pipeline=pipeline)
    pipeline.register("test", lambda row, finish: (_ for _ in ()).throw(RuntimeError("not yet")))

    async def scenario() -> tuple[int, dict, int, str]:
        runner, base = await serve_locally(app)  # type: ignore[arg-type]
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "healthz") as alive:
                    assert alive.status == 200
                async with http.get(base + "readyz") as ready:
                    ready_status, ready_body = ready.status, await ready.json()
                async with http.get(base + "metrics") as metrics:
                    return ready_status, ready_body, metrics.status, await metrics.text()
        finally:
            await runner.cleanup()

    ready_status, ready_body, metrics_status, exposition = asyncio.run(scenario())
    assert ready_status == 200 and ready_body["database"] == "ok"
    assert metrics_status == 200
    figures = _families(exposition)
    assert figures["causette_inbox_depth"] == 3
    assert figures["causette_inbox_poison"] == 0


def test_not_ready_when_the_backlog_is_too_long(bot: Bot, settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("adapters.server.READY_BACKLOG", 2)
    pipeline = Pipeline(bot, threads=1)
    for n in range(2):
        inbox_store.put(bot.services.db, "test", f"e{n}", "event", "{}", bot.services.clock.now())
    app = build_app(bot, settings, pipeline=pipeline)

    async def scenario() -> tuple[int, dict]:
        runner, base = await serve_locally(app)  # type: ignore[arg-type]
        try:
            async with aiohttp.ClientSession() as http, http.get(base + "readyz") as ready:
                return ready.status, await ready.json()
        finally:
            await runner.cleanup()

    status, body = asyncio.run(scenario())
    assert status == 503 and body["inbox_depth"] == 2
    assert READY_BACKLOG > 2


def test_not_ready_when_the_database_is_unreachable(settings: Settings, services, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from store.db import Database

    services.db = Database(f"sqlite:///{tmp_path}/missing/dir/causette.db")
    bot = Bot(services)
    app = build_app(bot, settings, pipeline=Pipeline(bot, threads=1))

    async def scenario() -> tuple[int, int, int]:
        runner, base = await serve_locally(app)  # type: ignore[arg-type]
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "healthz") as alive, http.get(base + "readyz") as ready:
                    async with http.get(base + "metrics") as metrics:
                        return alive.status, ready.status, metrics.status
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()) == (200, 503, 200)


def test_platform_api_errors_are_counted_while_the_server_runs(bot: Bot) -> None:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    from adapters.slack.client import log_api_error
    from bot.metrics import report_api_error

    pipeline = Pipeline(bot, threads=1)
    pipeline.start()
    try:
        response = SlackResponse(client=None, http_verb="POST", api_url="x", req_args={}, data={"ok": False, "error": "fatal_error"},
                                 headers={}, status_code=500)
        log_api_error("chat.postMessage", SlackApiError("boom", response), channel="C1")
        report_api_error("teams", "send_to_conversation")
    finally:
        pipeline.stop()
    report_api_error("teams", "send_to_conversation")  # after the server stopped: not counted
    exposition = pipeline.metrics.exposition().decode()
    assert 'causette_platform_api_errors_total{method="chat.postMessage",platform="slack"} 1.0' in exposition
    assert 'causette_platform_api_errors_total{method="send_to_conversation",platform="teams"} 1.0' in exposition
