"""Assembles the Slack side of the server: adapter, Bolt app, HTTP routes, Socket Mode.

HTTP answers: the front door (request_guard) refuses an oversized body (413), a request
not signed by Slack (401) and a signed body that is not what Slack sends (400), each with
one log line; then Bolt's own (200 ack); a listener failure is logged and answered 200,
because the Events API must never see a 5xx.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import extract_user_id

from adapters.server import pipeline_key
from adapters.slack.adapter import SlackAdapter
from adapters.slack.bolt_app import EVENTS, build_bolt_app, event_key
from adapters.slack.client import InstalledTokens, SingleToken, TokenSource
from adapters.slack.inbound import team_of
from adapters.slack.request_guard import Refused, admit_body, bolt_request, refusal_response
from adapters.express import ExpressLane
from bot.config import Settings
from bot.core import Bot

log = logging.getLogger("adapters.slack")
EVENTS_PATH = "/slack/events"
NOTICE_LOCALE_SECONDS = 0.3  # the ack has waited ACK_WRITE_SECONDS (2 s) of Slack's 3 already


@dataclass
class SlackRuntime:
    adapter: SlackAdapter
    bolt: AsyncApp
    settings: Settings
    socket_handler: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    express: Any = None  # adapters.express.ExpressLane over the app's inbox worker, once attached
    single_team: bool = False  # one workspace's bot token (no OAuth installs)
    identity: tuple[str | None, str] | None = None  # (bot id, bot user id) from Bolt's authorization

    @classmethod
    def build(cls, bot: Bot, settings: Settings, *, pace_seconds: float = 1.0) -> "SlackRuntime":
        oauth = None
        tokens: TokenSource
        multi = bool(settings.slack_client_id and settings.slack_client_secret)
        if multi:
            from adapters.slack import oauth as oauth_mod

            store = oauth_mod.installation_store(settings.slack_client_id, bot.services.db.engine)
            tokens = InstalledTokens(store)
            oauth = oauth_mod.oauth_settings(settings.slack_client_id, settings.slack_client_secret, bot.services.db.engine, store)
        else:
            tokens = SingleToken(settings.slack_bot_token)
        adapter = SlackAdapter(bot, tokens, settings.slack_api_url, pace_seconds=pace_seconds)
        bolt = build_bolt_app(adapter, signing_secret=settings.slack_signing_secret, api_url=settings.slack_api_url,
                              command=settings.command_name, token=None if multi else settings.slack_bot_token,
                              oauth_settings=oauth)
        return cls(adapter, bolt, settings, single_team=not multi and bool(settings.slack_bot_token))

    # HTTP --------------------------------------------------------------------------
    async def handle_events(self, request: web.Request) -> web.Response:
        try:  # size, signature and shape are checked before Bolt (request_guard)
            text, body = await admit_body(request, self.settings.slack_signing_secret)
            stored = self._only_stored(body)
            guarded = None if stored is not None else bolt_request(request, text, body)
        except Refused as refusal:
            return refusal_response(refusal)
        pending, token = self.adapter.deferred()
        try:
            response: Any = None
            if stored is not None:
                response = await self._store(body, *stored)
            else:
                try:
                    response = await self.bolt.async_dispatch(guarded)
                except Exception:  # noqa: BLE001
                    log.exception("slack: dispatch failed")
                self._learn_identity(guarded)
            if "failed" in pending:  # not written to the inbox: Slack must not take it as received
                reply = web.Response(status=503, text="try again")
            elif "delayed" in pending:
                notice = await self._delayed_notice(body)
                reply = web.json_response({"response_type": "ephemeral", "text": notice})
            elif response is None or response.status >= 500:
                if response is not None:
                    log.error("slack: listener failed (%s); answered 200 so Slack does not retry or disable events", response.status)
                reply = web.Response(status=200, text="")
            elif isinstance(response, web.Response):
                reply = response
            else:
                reply = await to_aiohttp_response(response)
            if pending:  # the ack goes out first; only then may the inbox worker start
                await reply.prepare(request)
                await reply.write_eof()
            return reply
        finally:
            if self.adapter.release(pending, token):
                self.express.poke()

    # Deliveries that are only stored before their ack ------------------------------
    # A slash command of ours and the events Bolt would hand to `bolt_app.register`'s event
    # listener need nothing of Bolt before their ack but its authorization's answer (which
    # bot we are) and its "ignore our own events" rule: they are stored here (the same
    # `SlackAdapter.accept`, the same answer), without Bolt's dispatch (context, middleware
    # chain, listener matching and runner: 0.3 ms of the event loop per request, as much
    # as the rest of the ack). Only with a single workspace's token, once Bolt has
    # authorized a request (auth.test, which Bolt then keeps for good); with OAuth installs,
    # Bolt authorizes each request against the installation store. Everything else
    # (interactions, url_verification, ssl_check, other commands and events) goes to Bolt.
    def _only_stored(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """(kind, order key) of a delivery stored without Bolt, or None."""
        if self.identity is None:
            return None
        if body.get("type") == "event_callback":  # request_guard: then "event" is a dict with a str "type"
            if body["event"]["type"] not in EVENTS:
                return None
            return "event", event_key(body)
        if body.get("command") == self.settings.command_name and body.get("ssl_check") != "1":
            return "command", ""
        return None

    async def _store(self, body: dict[str, Any], kind: str, key: str) -> web.Response:
        """What the Bolt app does with such a delivery (bolt_app.register: the same `accept`,
        Bolt's ack: 200, empty), without Bolt."""
        bot_id, bot_user_id = self.identity  # type: ignore[misc]
        if kind == "event" and self._from_ourselves(body["event"], extract_user_id(body), bot_id, bot_user_id):
            return web.Response(status=200, body=b"", content_type="text/plain")  # Bolt ignores our own events
        try:
            await self.adapter.accept(kind, body, bot_user_id, key=key)
        except Exception as error:  # noqa: BLE001 - as bolt_app's error handler: logged; the answer says
            log.error("slack listener error: %r (payload type %s)", error, body.get("type"))
        return web.Response(status=200, body=b"", content_type="text/plain")

    @staticmethod
    def _from_ourselves(event: dict[str, Any], user: str | None, bot_id: str | None, bot_user_id: str) -> bool:
        """Bolt's IgnoringSelfEvents rule: an event by our bot user or our bot, except the
        membership events (which say the bot joined or left a channel)."""
        mine = (user is not None and user == bot_user_id) or (event.get("bot_id") is not None and event.get("bot_id") == bot_id)
        return mine and event["type"] not in ("member_joined_channel", "member_left_channel")

    def _learn_identity(self, request: Any) -> None:
        """Single workspace: which bot we are, from Bolt's authorization of a request."""
        if self.identity is not None or not self.single_team or request is None:
            return
        result = request.context.authorize_result
        if result is not None and result.bot_user_id:
            self.identity = (result.bot_id, result.bot_user_id)

    async def _delayed_notice(self, body: Any) -> str:
        """"Your answer is late", to the person who ran the slash command (the only delivery
        answered so; its body names them user_id), in their language. The store is what is slow
        or away here: when it cannot say within NOTICE_LOCALE_SECONDS (the ack is due), the
        notice is in the default language."""
        shell = self.adapter.shell
        locale = asyncio.to_thread(shell.locale, team_of(body), str(body.get("user_id") or ""), private=True)
        try:
            language = await asyncio.wait_for(locale, NOTICE_LOCALE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the notice goes out anyway
            log.info("slack: the late command's person's language unknown (%s); notice in %s", type(exc).__name__,
                     self.settings.default_locale)
            language = self.settings.default_locale
        return shell.services.prompts.t(language, "slack.delayed")

    async def handle_oauth(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        if flow is None:
            return web.Response(status=404)
        oauth_request = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
        if request.path == flow.install_path:
            response = await flow.handle_installation(oauth_request)
        else:
            response = await flow.handle_callback(oauth_request)
        return await to_aiohttp_response(response)

    def attach(self, app: web.Application, outbox: Any) -> None:
        if self.settings.slack_signing_secret:
            app.router.add_post(EVENTS_PATH, self.handle_events)
        if self.bolt.oauth_flow is not None:
            app.router.add_get(self.bolt.oauth_flow.install_path, self.handle_oauth)
            app.router.add_get(self.bolt.oauth_flow.redirect_uri_path, self.handle_oauth)
        outbox.register("slack", self.adapter.deliver)
        pipeline = app[pipeline_key()]
        self.adapter.pipeline = pipeline
        pipeline.register("slack", self.adapter.process_row)
        # One claimer takes an acknowledged delivery at once, rather than every worker thread
        # racing for it (their losing claims queued on SQLite's write turn: half the reply time).
        self.express = ExpressLane(pipeline.worker)
        app.on_startup.append(self._start_express)
        if self.settings.slack_app_token:
            app.on_startup.append(self._start_socket_mode)
        app.on_cleanup.append(self._cleanup)
        app[RUNTIME_KEY] = self

    async def _start_socket_mode(self, _app: web.Application) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self.socket_handler = AsyncSocketModeHandler(self.bolt, self.settings.slack_app_token)
        await self.socket_handler.connect_async()
        log.info("slack: connected in Socket Mode")

    async def _start_express(self, _app: web.Application) -> None:
        self.express.start()

    async def _cleanup(self, _app: web.Application) -> None:
        if self.socket_handler is not None:
            await self.socket_handler.close_async()
        await asyncio.to_thread(self.express.stop)
        await self.adapter.drain(timeout=10)
        self.adapter.close()


RUNTIME_KEY = web.AppKey("slack", SlackRuntime)
