"""The work done after the ack: deduplicate, translate, run the bot, send the replies.

Bolt listeners only ack and call `SlackAdapter.submit`; everything here runs in a worker
thread (adapters/slack/workers.py), so no database or matching work ever delays an ack.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import select

from adapters.slack import home, inbound
from adapters.slack.client import Clients, Pacer, TokenSource, log_api_error
from adapters.slack.render import FORM_CALLBACK, home_view, render_modal
from adapters.slack.sender import Origin, SlackSender
from adapters.slack.workers import Workers
from bot.core import Bot
from bot.types import ConversationRef, Effect, Event, IncomingMessage, UserRef
from store.idempotency import claim
from store.models.core import Conversation, Person

log = logging.getLogger("adapters.slack")
Body = Mapping[str, Any]
SHORTCUTS = {"causette_ask": "ask", "causette_idea": "idea"}


class SlackAdapter:
    def __init__(self, bot: Bot, tokens: TokenSource, api_url: str, *, pace_seconds: float = 1.0, workers: int = 8) -> None:
        self.bot = bot
        self.services = bot.services
        self.tokens = tokens
        self.clients = Clients(api_url)
        self.sender = SlackSender(self.services, tokens, self.clients, Pacer(pace_seconds), self.handle)
        self.workers = Workers(workers, extra_busy=lambda: bool(self.sender.pending))
        self._known: set[tuple[str, str]] = set()
        self._kinds: dict[tuple[str, str], str] = {}

    # Plumbing -----------------------------------------------------------------
    def handle(self, event: Event) -> list[Effect]:
        """The one door into the core (tests and the harness wrap it to record effects)."""
        return self.bot.handle(event)

    def submit(self, fn: Callable[..., None], *args: Any, key: str | None = None) -> None:
        """Run `fn(*args)` after the ack in a worker thread (see `Workers.submit`)."""
        self.workers.submit(fn, *args, key=key)

    def deferred(self) -> Any:
        return self.workers.deferred()

    def release(self, pending: Any) -> None:
        self.workers.release(pending)

    def busy(self) -> bool:
        return self.workers.busy()

    async def drain(self, timeout: float = 30.0) -> None:
        await self.workers.drain(timeout)

    def close(self) -> None:
        self.workers.close()
        self.sender.backfill_pool.shutdown(wait=True)

    def deliver(self, effects: Sequence[Effect]) -> None:
        """The Outbox sender for platform "slack" (jobs: digests, notifications)."""
        self.sender.deliver(effects)

    def _claim(self, tenant: str, key: str) -> bool:
        with self.services.db.session(tenant) as s:
            return claim(s, tenant, key)

    def ensure_profile(self, origin: Origin, user: str) -> None:
        """First sight of a person: their Slack profile (users.info) goes to the core."""
        if not user or (origin.team, user) in self._known:
            return
        with self.services.db.session(origin.team) as s:
            known = s.scalar(select(Person.id).where(Person.external_id == user)) is not None
        if not known:
            client = self.sender.client_for(origin.team, origin)
            try:
                info = client.users_info(user=user)
                update = inbound.profile_update(info.get("user") or {}, origin.team)
                if update is not None:
                    self.sender.deliver(self.handle(update))
            except Exception as exc:  # noqa: BLE001
                log_api_error("users.info", exc, user=user)
        self._known.add((origin.team, user))

    def run_message(self, msg: IncomingMessage, origin: Origin, *, verify_kind: bool = False) -> None:
        if verify_kind and msg.conversation.kind == "public":
            msg = replace(msg, conversation=replace(msg.conversation, kind=self.conversation_kind(origin, msg.conversation.id)))
        self.ensure_profile(origin, msg.sender.id)
        self.sender.deliver(self.handle(msg), origin)

    def conversation_kind(self, origin: Origin, channel: str) -> str:
        """Slash commands, clicks and shortcuts do not say whether a C… channel is private:
        trust what we stored, else ask conversations.info; when unsure, say private."""
        key = (origin.team, channel)
        kind = self._kinds.get(key)
        if kind is not None:
            return kind
        with self.services.db.session(origin.team) as s:
            kind = s.scalar(select(Conversation.kind).where(Conversation.external_id == channel))
        if kind is None:
            try:
                info = self.sender.client_for(origin.team, origin).conversations_info(channel=channel).get("channel") or {}
                kind = "dm" if info.get("is_im") else "group" if info.get("is_mpim") else "private" if info.get("is_private") else "public"
            except Exception as exc:  # noqa: BLE001
                log_api_error("conversations.info", exc, channel=channel)
                kind = "private"
        self._kinds[key] = kind
        return kind

    # Slash command ----------------------------------------------------------------
    def on_command(self, body: Body, token: str | None) -> None:
        msg = inbound.slash_command(body)
        origin = Origin(team=msg.conversation.tenant, user=msg.sender.id, channel=msg.conversation.id, token=token,
                        response_url=body.get("response_url"), trigger_id=body.get("trigger_id"), command_text=msg.text)
        self.run_message(msg, origin, verify_kind=True)

    # Events API -------------------------------------------------------------------
    def on_event(self, body: Body, token: str | None, bot_user_id: str | None) -> None:
        event = body.get("event") or {}
        tenant = inbound.team_of(body)
        if not tenant or not isinstance(event, Mapping):
            return
        event_id = body.get("event_id")
        if event_id and not self._claim(tenant, f"slack:event:{event_id}"):
            log.info("slack: duplicate delivery of %s ignored", event_id)
            return
        kind = event.get("type")
        origin = Origin(team=tenant, user=str(event.get("user") or ""), channel=str(event.get("channel") or ""), token=token)
        neutral: Event | None = None
        if kind in ("message", "app_mention"):
            subtype = event.get("subtype")
            if subtype == "message_changed":
                neutral = inbound.edited_event(event, tenant, bot_user_id)
            elif subtype == "message_deleted":
                neutral = inbound.deleted_event(event, tenant)
            else:
                self._on_message(event, tenant, bot_user_id, origin, mention=kind == "app_mention")
                return
        elif kind in ("reaction_added", "reaction_removed"):
            neutral = inbound.reaction_event(event, tenant, removed=kind == "reaction_removed")
            if neutral is not None and neutral.conversation.kind == "public":  # reactions do not say
                conv = neutral.conversation
                neutral = replace(neutral, conversation=replace(conv, kind=self.conversation_kind(origin, conv.id)))
        elif kind in ("member_joined_channel", "member_left_channel"):
            neutral = inbound.members_event(event, tenant, bot_user_id, left=kind == "member_left_channel")
        elif kind == "user_change" and isinstance(event.get("user"), Mapping):
            neutral = inbound.profile_update(event["user"], tenant)
            origin = replace(origin, user="")
        elif kind == "app_home_opened" and event.get("tab", "home") == "home":
            self.publish_home(tenant, str(event.get("user") or ""), str(event.get("channel") or ""), origin)
            return
        if neutral is not None:
            self.sender.deliver(self.handle(neutral), origin)

    def _on_message(self, event: Body, tenant: str, bot_user_id: str | None, origin: Origin, *, mention: bool) -> None:
        msg = inbound.message_event(event, tenant, bot_user_id, mention=mention)
        if msg is None:
            return
        if not mention and msg.conversation.kind != "dm" and inbound.mentions_bot(event, bot_user_id):
            return  # the app_mention event of the same message carries it, addressed
        # app_mention + message (or a DM mention) arrive for one message: handle it once.
        if not self._claim(tenant, f"slack:msg:{msg.conversation.id}:{msg.id}"):
            return
        self.run_message(msg, origin)

    # Interactivity --------------------------------------------------------------
    def on_button(self, body: Body, action: Body, token: str | None) -> None:
        msg = inbound.button_click(body, action)
        if msg is None:
            return
        origin = Origin(team=msg.conversation.tenant, user=msg.sender.id, channel=msg.conversation.id, token=token,
                        response_url=body.get("response_url"), trigger_id=body.get("trigger_id"), command_text=msg.text)
        self.run_message(msg, origin, verify_kind=True)

    def on_form(self, body: Body, token: str | None) -> None:
        view = body.get("view") or {}
        tenant = inbound.team_of(body)
        user = inbound.user_of(body)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        command = str(meta.get("cmd") or "").strip()
        if not command or not user or not tenant:
            return
        channel = str(meta.get("ch") or user)
        kind = meta.get("k") if meta.get("k") in ("dm", "public", "private", "group") else "dm"
        msg = IncomingMessage(
            id=f"form-{view.get('id', '')}", text=command, sender=inbound.user_ref_of(body, tenant),
            conversation=ConversationRef(inbound.PLATFORM, tenant, channel, kind), addressed=True,
            form_values=inbound.form_values(view), thread_id=meta.get("th"), via="form",
        )
        self.run_message(msg, Origin(team=tenant, user=user, channel=channel, token=token))

    def on_profile_form(self, body: Body, token: str | None) -> None:
        tenant, user = inbound.team_of(body), inbound.user_of(body)
        values = inbound.form_values(body.get("view") or {})
        origin = Origin(team=tenant, user=user, channel=user, token=token)
        for command in home.profile_commands(values, home.current_profile(self.bot, tenant, user)):
            msg = IncomingMessage(id=f"profile-{user}", text=command, sender=UserRef(inbound.PLATFORM, tenant, user),
                                  conversation=ConversationRef(inbound.PLATFORM, tenant, user, "dm"), addressed=True,
                                  form_values=values, via="form")
            self.run_message(msg, origin)

    def open_profile_form(self, body: Body, token: str | None) -> None:
        tenant, user = inbound.team_of(body), inbound.user_of(body)
        origin = Origin(team=tenant, user=user, token=token)
        t = self.sender.translator(tenant, user)
        form = home.profile_form(self.bot, tenant, user, t)
        view = render_modal(form, {"ch": user, "k": "dm"}, t, callback_id=home.PROFILE_CALLBACK)
        try:
            self.sender.client_for(tenant, origin).views_open(trigger_id=body.get("trigger_id"), view=view)
        except Exception as exc:  # noqa: BLE001
            log_api_error("views.open", exc, user=user)

    def on_shortcut(self, body: Body, token: str | None) -> None:
        command = SHORTCUTS.get(str(body.get("callback_id") or ""))
        tenant = inbound.team_of(body)
        if command is None or not tenant:
            return
        channel = str((body.get("channel") or {}).get("id") or "")
        ts = str((body.get("message") or {}).get("ts") or "")
        origin = Origin(team=tenant, user=inbound.user_of(body), channel=channel, token=token,
                        response_url=body.get("response_url"), trigger_id=body.get("trigger_id"), command_text=command)
        msg = inbound.shortcut_message(body, command, self._permalink(origin, channel, ts))
        if msg is not None:
            self.run_message(msg, origin, verify_kind=True)

    def _permalink(self, origin: Origin, channel: str, ts: str) -> str:
        if not channel or not ts:
            return ""
        try:
            resp = self.sender.client_for(origin.team, origin).chat_getPermalink(channel=channel, message_ts=ts)
            return str(resp.get("permalink") or "")
        except Exception as exc:  # noqa: BLE001
            log_api_error("chat.getPermalink", exc, channel=channel)
            return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"

    # App Home -------------------------------------------------------------------
    def publish_home(self, tenant: str, user: str, channel: str, origin: Origin) -> None:
        if not user:
            return
        self.ensure_profile(origin, user)
        t = self.sender.translator(tenant, user)
        view = home_view(home.home_blocks(self.bot, tenant, user, channel, t), t)
        try:
            self.sender.client_for(tenant, origin).views_publish(user_id=user, view=view)
        except Exception as exc:  # noqa: BLE001
            log_api_error("views.publish", exc, user=user)


__all__ = ["SlackAdapter", "Origin", "FORM_CALLBACK"]
