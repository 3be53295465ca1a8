"""The Bolt AsyncApp: verifies every request, acks at once, hands the payload to a worker.

HTTP requests reach it through the front door (request_guard), already verified and parsed;
its signature middleware is a second line that logs no body.

`process_before_response=True` makes Bolt answer as soon as a listener returns, and every
listener here returns right after `ack()` and `SlackAdapter.accept(...)`, which writes the
delivery to the durable inbox: that one short write is the only database work before the
acknowledgement, and a delivery that could not be written is not acknowledged.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.adapter import SlackAdapter
from adapters.slack.home import PROFILE_CALLBACK, PROFILE_EDIT_ACTION
from adapters.slack.render import ACTION_PREFIX, FORM_CALLBACK
from adapters.slack.request_guard import QuietRequestVerification

log = logging.getLogger("adapters.slack")
EVENTS = ("message", "app_mention", "reaction_added", "reaction_removed", "member_joined_channel",
          "member_left_channel", "user_change", "app_home_opened")
SHORTCUT_IDS = ("causette_ask", "causette_idea", "causette_suggest")


def build_bolt_app(adapter: SlackAdapter, *, signing_secret: str, api_url: str, command: str,
                   token: str | None = None, oauth_settings: Any = None) -> AsyncApp:
    client = AsyncWebClient(token=token or None, base_url=api_url if api_url.endswith("/") else api_url + "/")
    app = AsyncApp(  # the client carries the token (single workspace) or none (OAuth installs)
        signing_secret=signing_secret or None,
        client=client,
        oauth_settings=oauth_settings,
        process_before_response=True,
        # the front door (request_guard) verifies first; this is Bolt's check minus its body logging
        request_verification_enabled=False,
        before_authorize=QuietRequestVerification(signing_secret, base_logger=log) if signing_secret else None,
        logger=log,
    )
    register(app, adapter, command)
    return app


def event_key(body: dict[str, Any]) -> str:
    """Events of one conversation (or about one person) are handled in arrival order."""
    event = body.get("event") or {}
    item = event.get("item") or {}
    user = event.get("user")
    where = event.get("channel") or item.get("channel") or (user.get("id") if isinstance(user, dict) else user) or ""
    return f"{body.get('team_id', '')}:{where}"


def register(app: AsyncApp, adapter: SlackAdapter, command: str) -> None:
    @app.command(command)
    async def on_command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        await adapter.accept("command", body, context.bot_user_id)

    for name in EVENTS:
        @app.event(name)
        async def on_event(body: dict[str, Any], context: AsyncBoltContext) -> None:
            await adapter.accept("event", body, context.bot_user_id, key=event_key(body))

    @app.event(re.compile(".*"))
    async def on_other_event(body: dict[str, Any]) -> None:
        log.debug("slack: event %s not used", (body.get("event") or {}).get("type"))

    @app.action(PROFILE_EDIT_ACTION)
    async def on_profile_edit(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        await adapter.accept("profile_edit", body, context.bot_user_id)

    @app.action(re.compile("^" + re.escape(ACTION_PREFIX)))
    async def on_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        await adapter.accept("button", body, context.bot_user_id, action=action)

    @app.action(re.compile(".*"))
    async def on_other_action(ack: AsyncAck) -> None:
        await ack()

    @app.view_submission(FORM_CALLBACK)
    async def on_form(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        await adapter.accept("form", body, context.bot_user_id)

    @app.view_submission(PROFILE_CALLBACK)
    async def on_profile_form(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        await adapter.accept("profile_form", body, context.bot_user_id)

    @app.view_closed(re.compile(".*"))
    async def on_view_closed(ack: AsyncAck) -> None:
        await ack()

    for callback in SHORTCUT_IDS:
        @app.shortcut(callback)
        async def on_shortcut(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
            await ack()
            await adapter.accept("shortcut", body, context.bot_user_id)

    @app.shortcut(re.compile(".*"))
    async def on_other_shortcut(ack: AsyncAck) -> None:
        await ack()

    @app.view_submission(re.compile(".*"))
    async def on_other_view(ack: AsyncAck) -> None:
        await ack()

    @app.options(re.compile(".*"))
    async def on_options(ack: AsyncAck) -> None:
        await ack(options=[])

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener error: %r (payload type %s)", error, body.get("type"))
