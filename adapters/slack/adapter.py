"""The work done after the ack: deduplicate, translate, run the bot, send the replies.

Bolt listeners only ack and call `SlackAdapter.submit`; everything here runs in a worker
thread (adapters/slack/workers.py), so no database or matching work ever delays an ack.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

from sqlalchemy import select

from adapters.slack import home, inbound
from adapters.slack.client import Clients, Pacer, TokenSource, log_api_error
from adapters.slack.render import FORM_CALLBACK, home_view, render_modal
from adapters.slack.sender import Origin, SlackSender
from adapters.slack.workers import Workers
from bot.core import Bot
from bot.types import ConversationKind, ConversationRef, Effect, Event, IncomingMessage, MembersChanged, UserRef
from store.idempotency import claim
from store.models.core import Conversation, Person

log = logging.getLogger("adapters.slack")
Body = Mapping[str, Any]
SHORTCUTS = {"causette_ask": "ask", "causette_idea": "idea"}
# Message subtypes Slack posts in a channel whose privacy changed (they carry its new channel_type).
PRIVACY_CHANGES: dict[str, ConversationKind] = {"channel_convert_to_private": "private", "channel_convert_to_public": "public"}
MAX_MEMBER_PAGES = 50
E = TypeVar("E")


class SlackAdapter:
    def __init__(self, bot: Bot, tokens: TokenSource, api_url: str, *, pace_seconds: float = 1.0, workers: int = 8) -> None:
        self.bot = bot
        self.services = bot.services
        self.tokens = tokens
        self.clients = Clients(api_url)
        self.sender = SlackSender(self.services, tokens, self.clients, Pacer(pace_seconds), self.handle)
        self.workers = Workers(workers, extra_busy=lambda: bool(self.sender.pending))
        self._known: set[tuple[str, str]] = set()
        self._kinds: dict[tuple[str, str], ConversationKind] = {}  # (team, channel) → kind Slack gave

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

    def run_message(self, msg: IncomingMessage, origin: Origin) -> None:
        self.ensure_profile(origin, msg.sender.id)
        self.sender.deliver(self.handle(msg), origin)

    def replayed(self, tenant: str, kind: str, body: Body) -> bool:
        """True when this signed command or interaction was already handled: Slack only refuses
        requests older than five minutes, so a captured one can be sent again within them."""
        if not tenant or self._claim(tenant, inbound.replay_key(kind, body)):
            return False
        log.warning("slack: %s replayed (%s) ignored", kind, body.get("trigger_id") or "no trigger_id")
        return True

    def conversation_kind(self, origin: Origin, channel: str, told: ConversationKind | None = None) -> ConversationKind:
        """What `channel` is, from Slack and never from a guess, before anything said there is stored.

        `told`: what the payload states with authority (`inbound.kind_from`). Otherwise a
        non-public kind already stored is kept (the core never makes a conversation public
        again), and anything else (unknown, or stored "public" by a version that guessed it)
        is asked of conversations.info once per process; when Slack cannot say, private.
        """
        key = (origin.team, channel)
        if told is not None:
            self._kinds[key] = told
            return told
        kind = self._kinds.get(key)
        if kind is not None:
            return kind
        with self.services.db.session(origin.team) as s:
            stored = s.scalar(select(Conversation.kind).where(Conversation.external_id == channel))
        if stored in ("private", "group", "dm"):
            kind = stored
        else:
            try:
                info = self.sender.client_for(origin.team, origin).conversations_info(channel=channel).get("channel") or {}
                kind = inbound.kind_of_info(info)
            except Exception as exc:  # noqa: BLE001
                log_api_error("conversations.info", exc, channel=channel)
                kind = "private"
        self._kinds[key] = kind
        return kind

    def settled(self, event: E, origin: Origin, told: ConversationKind | None) -> E:
        """`event` with its conversation's kind from `conversation_kind`."""
        conv = event.conversation  # type: ignore[attr-defined]
        if not conv.id:
            return event
        kind = self.conversation_kind(origin, conv.id, told)
        return event if kind == conv.kind else replace(event, conversation=replace(conv, kind=kind))  # type: ignore[type-var]

    def channel_members(self, origin: Origin, channel: str, bot_user_id: str | None) -> tuple[UserRef, ...]:
        """Everyone in `channel` (conversations.members, page by page); () when Slack cannot say."""
        members: list[UserRef] = []
        cursor = ""
        try:
            for _ in range(MAX_MEMBER_PAGES):
                resp = self.sender.client_for(origin.team, origin).conversations_members(channel=channel, limit=1000, cursor=cursor or None)
                members += [UserRef(inbound.PLATFORM, origin.team, str(u)) for u in resp.get("members") or [] if u and u != bot_user_id]
                cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
                if not cursor:
                    break
        except Exception as exc:  # noqa: BLE001 - who spoke there stay members; the others lose nothing public
            log_api_error("conversations.members", exc, channel=channel)
        return tuple(members)

    # Slash command ----------------------------------------------------------------
    def on_command(self, body: Body, token: str | None) -> None:
        if self.replayed(inbound.team_of(body), "command", body):
            return
        msg = inbound.slash_command(body)
        origin = Origin(team=msg.conversation.tenant, user=msg.sender.id, channel=msg.conversation.id, token=token,
                        response_url=body.get("response_url"), trigger_id=body.get("trigger_id"), command_text=msg.text)
        told = inbound.kind_from(msg.conversation.id, channel_name=body.get("channel_name"))
        self.run_message(self.settled(msg, origin, told), origin)

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
        channel = str(event.get("channel") or "")
        origin = Origin(team=tenant, user=str(event.get("user") or ""), channel=channel, token=token)
        told = inbound.kind_from(channel, event.get("channel_type")) if channel else None
        neutral: Event | None = None
        if kind in ("message", "app_mention"):
            subtype = event.get("subtype")
            if subtype == "message_changed":
                neutral = inbound.edited_event(event, tenant, bot_user_id)
            elif subtype == "message_deleted":
                neutral = inbound.deleted_event(event, tenant)
            elif subtype in PRIVACY_CHANGES:
                neutral = self._privacy_changed(origin, channel, PRIVACY_CHANGES[subtype], bot_user_id)
            else:
                self._on_message(event, tenant, bot_user_id, origin, told, mention=kind == "app_mention")
                return
        elif kind in ("reaction_added", "reaction_removed"):
            neutral = inbound.reaction_event(event, tenant, removed=kind == "reaction_removed")
            item = event.get("item") or {}
            told = inbound.kind_from(str(item.get("channel") or "")) if isinstance(item, Mapping) else None
        elif kind in ("member_joined_channel", "member_left_channel"):
            neutral = inbound.members_event(event, tenant, bot_user_id, left=kind == "member_left_channel")
        elif kind == "user_change" and isinstance(event.get("user"), Mapping):
            neutral = inbound.profile_update(event["user"], tenant)
            origin = replace(origin, user="")
        elif kind == "app_home_opened" and event.get("tab", "home") == "home":
            self.publish_home(tenant, str(event.get("user") or ""), channel, origin)
            return
        if neutral is not None and hasattr(neutral, "conversation"):
            neutral = self.settled(neutral, origin, told)
        if neutral is not None:
            self.sender.deliver(self.handle(neutral), origin)

    def _privacy_changed(self, origin: Origin, channel: str, kind: ConversationKind, bot_user_id: str | None) -> Event | None:
        """A channel made private: from now on what was indexed there is readable by its members
        only (the store reads the conversation's kind), so they are read from Slack with it.
        Made public: remembered, but the core never opens a stored conversation on an event."""
        if not channel:
            return None
        self._kinds[(origin.team, channel)] = kind
        if kind == "public":
            log.info("slack: %s was made public; what it said before stays readable by its members only", channel)
            return None
        conv = ConversationRef(inbound.PLATFORM, origin.team, channel, kind)
        return MembersChanged(conv, joined=self.channel_members(origin, channel, bot_user_id))

    def _on_message(self, event: Body, tenant: str, bot_user_id: str | None, origin: Origin,
                    told: ConversationKind | None, *, mention: bool) -> None:
        msg = inbound.message_event(event, tenant, bot_user_id, mention=mention)
        if msg is None:
            return
        if not mention and msg.conversation.kind != "dm" and inbound.mentions_bot(event, bot_user_id):
            return  # the app_mention event of the same message carries it, addressed
        # app_mention + message (or a DM mention) arrive for one message: handle it once.
        if not self._claim(tenant, f"slack:msg:{msg.conversation.id}:{msg.id}"):
            return
        self.run_message(self.settled(msg, origin, told), origin)

    # Interactivity --------------------------------------------------------------
    def on_button(self, body: Body, action: Body, token: str | None) -> None:
        msg = inbound.button_click(body, action)
        if msg is None or self.replayed(msg.conversation.tenant, "action", body):
            return
        origin = Origin(team=msg.conversation.tenant, user=msg.sender.id, channel=msg.conversation.id, token=token,
                        response_url=body.get("response_url"), trigger_id=body.get("trigger_id"), command_text=msg.text)
        self.run_message(self.settled(msg, origin, inbound.interaction_kind(body)), origin)

    def on_form(self, body: Body, token: str | None) -> None:
        view = body.get("view") or {}
        tenant = inbound.team_of(body)
        user = inbound.user_of(body)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        command = str(meta.get("cmd") or "").strip()
        if not command or not user or not tenant or self.replayed(tenant, "view", body):
            return
        channel = str(meta.get("ch") or user)
        origin = Origin(team=tenant, user=user, channel=channel, token=token)
        # The kind the modal was opened with, when it is not public (a DM's "channel" is the
        # user's id, which Slack cannot describe); "public" is checked again.
        stated = meta.get("k") if meta.get("k") in ("dm", "private", "group") else None
        msg = IncomingMessage(
            id=f"form-{view.get('id', '')}", text=command, sender=inbound.user_ref_of(body, tenant),
            conversation=ConversationRef(inbound.PLATFORM, tenant, channel, stated or "private"), addressed=True,
            form_values=inbound.form_values(view), thread_id=meta.get("th"), via="form",
        )
        self.run_message(msg if stated else self.settled(msg, origin, None), origin)

    def on_profile_form(self, body: Body, token: str | None) -> None:
        tenant, user = inbound.team_of(body), inbound.user_of(body)
        if self.replayed(tenant, "view", body):
            return
        values = inbound.form_values(body.get("view") or {})
        origin = Origin(team=tenant, user=user, channel=user, token=token)
        for command in home.profile_commands(values, home.current_profile(self.bot, tenant, user)):
            msg = IncomingMessage(id=f"profile-{user}", text=command, sender=UserRef(inbound.PLATFORM, tenant, user),
                                  conversation=ConversationRef(inbound.PLATFORM, tenant, user, "dm"), addressed=True,
                                  form_values=values, via="form")
            self.run_message(msg, origin)

    def open_profile_form(self, body: Body, token: str | None) -> None:
        tenant, user = inbound.team_of(body), inbound.user_of(body)
        if self.replayed(tenant, "action", body):
            return
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
        if command is None or not tenant or self.replayed(tenant, "shortcut", body):
            return
        channel = str((body.get("channel") or {}).get("id") or "")
        ts = str((body.get("message") or {}).get("ts") or "")
        origin = Origin(team=tenant, user=inbound.user_of(body), channel=channel, token=token,
                        response_url=body.get("response_url"), trigger_id=body.get("trigger_id"), command_text=command)
        msg = inbound.shortcut_message(body, command, self._permalink(origin, channel, ts))
        if msg is not None:
            self.run_message(self.settled(msg, origin, inbound.interaction_kind(body)), origin)

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
