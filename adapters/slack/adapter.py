"""The work done after the ack: deduplicate, translate, run the bot, send the replies.

Bolt listeners only ack and call `SlackAdapter.accept`, which writes the delivery to the
durable inbox (adapters/server.py `Pipeline`) before the acknowledgement goes out. The
inbox worker hands each row back to `process_row` in a worker thread, so no matching work
ever delays an ack and nothing acknowledged is lost. Exactly one effect per delivery: the
idempotency keys a delivery claims (`_claim`, adapters/shell.py) and its inbox row's "done"
are written by the transaction of its main event (`handle_main`), so a retry after a crash
either finds the work committed and skips it, or redoes it from the start.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

from sqlalchemy.orm import Session

from adapters import shell
from adapters.shell import DeliveryShell, Duplicate
from adapters.slack import home, inbound
from adapters.slack.client import Clients, Pacer, TokenSource, log_api_error
from adapters.slack.render import FORM_CALLBACK, home_view, render_modal
from adapters.slack.sender import Origin, SlackSender
from bot import outbox
from bot.core import Bot
from bot.delivery import DeliveryFailed
from bot.types import ConversationKind, ConversationRef, Effect, Event, IncomingMessage, MembersChanged, UserRef
from bot.unit import after_commit, batched, before_waiting
from store.inbox import Claimed
from store.transient import is_transient

log = logging.getLogger("adapters.slack")
Body = Mapping[str, Any]
SHORTCUTS = {"causette_ask": "ask", "causette_idea": "idea", "causette_suggest": "suggest"}
# Message subtypes Slack posts in a channel whose privacy changed (they carry its new channel_type).
PRIVACY_CHANGES: dict[str, ConversationKind] = {"channel_convert_to_private": "private", "channel_convert_to_public": "public"}
MAX_MEMBER_PAGES = 50
E = TypeVar("E")
ACK_WRITE_SECONDS = 2.0  # how long the ack may wait for the inbox write (Slack's deadline is 3 s)
# How long an inbox write goes on trying after a transient failure (a dropped connection, a
# database restarting): an event, until shortly before its ack is due (then 503, and Slack
# sends it again); a command, which Slack never sends again, for as long as the person told
# "your answer is late" is asked to wait (slack.delayed).
EVENT_WRITE_SECONDS = 1.5
COMMAND_WRITE_SECONDS = 45.0
DELIVERY_KINDS = {"command": "command", "button": "action", "profile_edit": "action", "form": "view",
                  "profile_form": "view", "shortcut": "shortcut"}


class InboxUnavailable(RuntimeError):
    """The delivery could not be written to the inbox in time: it must not be acknowledged."""


@dataclass
class RowWork(shell.RowWork):
    """An inbox row's work (adapters/shell.py), and which of its events is the main one."""

    main: bool = False
    origin: Origin | None = None  # the interaction the main event's replies answer


def _nothing(_session: Session) -> None:
    """An `in_transaction` that adds nothing: Bot.handle then lets transient failures through."""


_WORK: ContextVar[RowWork | None] = ContextVar("slack_row_work", default=None)
# Within one HTTP request, what became of its deliveries: "written", "delayed" or "failed".
_ACKS: ContextVar["list[str] | None"] = ContextVar("slack_pending_acks", default=None)


def delivery_key(kind: str, body: Body) -> str:
    """The inbox's dedupe key: Slack's event id, or what makes a command or interaction unique."""
    if kind == "event":
        event_id = body.get("event_id")
        if event_id:
            return f"event:{event_id}"
        return inbound.replay_key("event", body)
    return inbound.replay_key(DELIVERY_KINDS.get(kind, kind), body)


class SlackAdapter:
    def __init__(self, bot: Bot, tokens: TokenSource, api_url: str, *, pace_seconds: float = 1.0) -> None:
        self.bot = bot
        self.services = bot.services
        self.tokens = tokens
        self.clients = Clients(api_url)
        self.sender = SlackSender(self.services, tokens, self.clients, Pacer(pace_seconds), self.handle)
        self.shell = DeliveryShell(self.services)
        self.pipeline: Any = None  # adapters.server.Pipeline, set when mounted
        self._known: set[tuple[str, str]] = set()
        self._kinds: dict[tuple[str, str], ConversationKind] = {}  # (team, channel) → kind Slack gave

    # Plumbing -----------------------------------------------------------------
    def handle(self, event: Event) -> list[Effect]:
        """The one door into the core (tests and the harness wrap it to record effects). The
        delivery's main event carries its claims and its inbox row's "done" in its transaction."""
        work = _WORK.get()
        if work is not None and not work.main and not work.finished:
            # Before the delivery's main event (a new person's profile): a transient failure
            # retries the whole row rather than losing this event's writes.
            return self.bot.handle(event, in_transaction=_nothing)
        if work is None or not work.main or work.finished:
            return self.bot.handle(event)
        work.main = False

        def record(session: Session, effects: Sequence[Effect]) -> None:
            context = {"slack": work.origin.stored(time.time())} if work.origin is not None else {}
            work.outbox = outbox.record(session, effects, self.services.clock.now(), context=context, source="slack",
                                        token=outbox.new_token("slack"))

        return self.bot.handle(event, in_transaction=work.commit, record=record)

    def handle_main(self, event: Event, origin: Origin | None = None) -> list[Effect]:
        work = _WORK.get()
        if work is not None:
            work.main = True
            work.origin = origin
        return self.handle(event)

    def send_main(self, effects: Sequence[Effect], origin: Origin) -> None:
        """After the main event's commit: send its replies, through its outbox row when the
        transaction recorded one (marked sent on success, retried by the sweeper otherwise).
        In an inbox batch, once the batch has committed (bot/unit.py)."""
        work = _WORK.get()
        leased = work.outbox if work is not None else None
        if leased is None:
            if effects:
                after_commit(lambda: self._deliver_unrecorded(effects, origin))
            return
        work.outbox = None  # type: ignore[union-attr]
        after_commit(lambda: outbox.deliver(self.services.db, self.services.clock, leased,
                                            lambda items: self.sender.deliver(items, origin), effects))

    def _deliver_unrecorded(self, effects: Sequence[Effect], origin: Origin) -> None:
        try:
            self.sender.deliver(effects, origin)
        except DeliveryFailed as exc:
            log.error("slack: replies not delivered and not recorded: %s", exc)

    async def accept(self, kind: str, body: Body, bot_user_id: str | None, *, action: Body | None = None,
                     key: str = "") -> None:
        """Before the ack: write the delivery to the durable inbox. Raises InboxUnavailable when
        that cannot be done in time, so the request is not acknowledged as received."""
        payload: dict[str, Any] = {"body": body, "bot_user_id": bot_user_id}
        if action is not None:
            payload["action"] = action
        acks = _ACKS.get()
        args = ("slack", delivery_key(kind, body), kind, json.dumps(payload))
        options = {"tenant": inbound.team_of(body), "order_key": key, "wake": acks is None}
        try:  # SQLite with its write turn free: written here, no thread hop (Pipeline.put_now)
            fresh = self.pipeline.put_now(*args, **options)
        except Exception as exc:  # noqa: BLE001 - the thread's write below tries again, or says why not
            log.debug("slack: inbox write in the event loop failed (%s); trying in a thread", type(exc).__name__)
            fresh = None
        if fresh is None:
            fresh = await self._write_in_thread(kind, acks, args, options)
            if fresh is None:  # answered "delayed"
                return
        if not fresh:
            log.info("slack: %s delivered again (%s); acknowledged, nothing more", kind, args[1])
        elif acks is not None:
            acks.append("written")

    async def _write_in_thread(self, kind: str, acks: "list[str] | None", args: tuple[str, ...],
                               options: dict[str, Any]) -> bool | None:
        """`_write` in a worker thread, for up to ACK_WRITE_SECONDS; None when a command's
        write goes on past them (its person is told their answer is late)."""
        write = asyncio.ensure_future(asyncio.to_thread(
            self._write, COMMAND_WRITE_SECONDS if kind == "command" else EVENT_WRITE_SECONDS, *args, **options))
        try:
            return await asyncio.wait_for(asyncio.shield(write), ACK_WRITE_SECONDS)
        except asyncio.TimeoutError:
            if kind == "command" and acks is not None:
                # The write goes on (a lock held elsewhere, under the busy timeout): the person
                # is told their answer is late rather than getting Slack's error.
                log.warning("slack: command still being written to the inbox after %.1f s; answered 'delayed'",
                            ACK_WRITE_SECONDS)
                write.add_done_callback(self._late_write_done)
                acks.append("delayed")
                return None
            log.error("slack: %s not written to the inbox in %.1f s; not acknowledged", kind, ACK_WRITE_SECONDS)
            if acks is not None:
                acks.append("failed")
            raise InboxUnavailable(kind) from None
        except Exception as exc:  # noqa: BLE001 - the database is away
            log.error("slack: %s could not be written to the inbox (%s); not acknowledged", kind, type(exc).__name__)
            if acks is not None:
                acks.append("failed")
            raise InboxUnavailable(kind) from exc

    def _write(self, budget: float, *args: Any, **kwargs: Any) -> bool:
        """`Pipeline.put`, tried again after a transient failure for up to `budget` seconds (a
        connection the database dropped fails the one transaction that was using it)."""
        deadline = time.monotonic() + budget
        pause = 0.05
        for attempt in range(1, 200):  # bounded by the deadline long before this count
            try:
                return bool(self.pipeline.put(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - only a transient failure is tried again
                if not is_transient(exc) or time.monotonic() + pause > deadline:
                    raise
                (log.warning if attempt == 1 else log.debug)(
                    "slack: inbox write failed (attempt %d, %s); trying again for up to %.1f s", attempt,
                    type(exc).__name__, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        raise InboxUnavailable("inbox write attempts exhausted")

    def _late_write_done(self, write: "asyncio.Future[bool]") -> None:
        if write.cancelled() or write.exception() is not None:
            log.error("slack: a late inbox write failed; that command was lost after the person was told it was late")
        elif self.pipeline is not None:
            self.pipeline.worker.wake()

    def deferred(self) -> "tuple[list[str], Token[list[str] | None]]":
        """At the start of an HTTP request: what becomes of its deliveries is collected in the
        list ("written", "delayed", "failed"), and the inbox worker is poked only once the ack is
        written (`release`, given the list and the token, always)."""
        pending: list[str] = []
        return pending, _ACKS.set(pending)

    def release(self, pending: list[str], token: "Token[list[str] | None] | None" = None) -> bool:
        """Once the ack is written: True when a delivery was written for the inbox worker to
        take now (the caller pokes it: SlackRuntime's express lane)."""
        if token is not None:
            _ACKS.reset(token)
        written = "written" in pending
        pending.clear()
        return written

    def busy(self) -> bool:
        return bool(self.sender.pending) or (self.pipeline is not None and self.pipeline.worker.busy())

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every written delivery was processed and every backfill finished."""
        if self.pipeline is not None:
            await asyncio.to_thread(self.pipeline.worker.drain, timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.busy() and loop.time() < deadline:
            await asyncio.sleep(0.002)

    def close(self) -> None:
        self.sender.backfill_pool.shutdown(wait=True)

    @batched
    def process_row(self, row: Claimed, finish: Callable[[Session], None]) -> None:
        """The inbox worker's processor for platform "slack": the work behind one delivery. Its
        units of work and sends go through bot/unit.py, so the worker may batch its rows."""
        data = json.loads(row.payload)
        body = data.get("body") or {}
        token = _WORK.set(RowWork(finish))
        try:
            if row.kind == "event":
                self.on_event(body, None, data.get("bot_user_id"))
            elif row.kind == "command":
                self.on_command(body, None)
            elif row.kind == "button":
                self.on_button(body, data.get("action") or {}, None)
            elif row.kind == "profile_edit":
                self.open_profile_form(body, None)
            elif row.kind == "form":
                self.on_form(body, None)
            elif row.kind == "profile_form":
                self.on_profile_form(body, None)
            elif row.kind == "shortcut":
                self.on_shortcut(body, None)
            else:
                log.warning("slack: inbox row %d of unknown kind %r ignored", row.id, row.kind)
        except Duplicate as exc:  # its work is committed: this row is done (the worker marks it)
            log.info("slack: inbox row %d rolled back: %s", row.id, exc)
        finally:
            _WORK.reset(token)

    def deliver(self, effects: Sequence[Effect]) -> None:
        """The Outbox sender for platform "slack" (jobs: digests, notifications)."""
        self.sender.deliver(effects)

    def _claim(self, tenant: str, key: str, *, check: bool = True) -> bool:
        """True the first time `key` is seen (`DeliveryShell.claim`: while an inbox row is
        processed, written by its main event's transaction)."""
        return self.shell.claim(tenant, key, _WORK.get(), check=check)

    def _client(self, team: str, origin: Origin | None = None) -> Any:
        """The Web API client for `team`, once an inbox batch has committed what it did so far
        (bot/unit.py: no transaction waits on the network)."""
        before_waiting()
        return self.sender.client_for(team, origin)

    def ensure_profile(self, origin: Origin, user: str) -> None:
        """First sight of a person: their Slack profile (users.info) goes to the core."""
        if not user or (origin.team, user) in self._known:
            return
        if not self.shell.known_person(origin.team, user):
            client = self._client(origin.team, origin)
            try:
                info = client.users_info(user=user)
            except Exception as exc:  # noqa: BLE001
                log_api_error("users.info", exc, user=user)
            else:  # a database failure in handle is the row's to retry, not Slack's
                update = inbound.profile_update(info.get("user") or {}, origin.team)
                effects = self.handle(update) if update is not None else []
                if effects:
                    after_commit(lambda: self._deliver_profile_effects(effects, user))
        self._known.add((origin.team, user))

    def _deliver_profile_effects(self, effects: Sequence[Effect], user: str) -> None:
        try:
            self.sender.deliver(effects)
        except Exception as exc:  # noqa: BLE001
            log_api_error("users.info", exc, user=user)

    def run_message(self, msg: IncomingMessage, origin: Origin) -> None:
        self.ensure_profile(origin, msg.sender.id)
        self.send_main(self.handle_main(msg, origin), origin)

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
        stored = self.shell.stored_kind(origin.team, channel)
        if stored in ("private", "group", "dm"):
            kind = stored
        else:
            try:
                info = self._client(origin.team, origin).conversations_info(channel=channel).get("channel") or {}
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
                resp = self._client(origin.team, origin).conversations_members(channel=channel, limit=1000, cursor=cursor or None)
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
            self.send_main(self.handle_main(neutral, origin), origin)

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
        # app_mention + message (or a DM mention) arrive for one message: handle it once. (An
        # ambient channel message comes as one event, which the inbox takes once, and is
        # indexed once whatever delivers it again: it needs no claim.) The claim is checked
        # when the work commits (RowWork): the pair is rare, reading first for it is not worth it.
        if msg.addressed and not self._claim(tenant, f"slack:msg:{msg.conversation.id}:{msg.id}", check=False):
            return
        if msg.addressed:  # a form answering it comes with a button that opens it (no trigger_id here)
            origin = replace(origin, command_text=msg.text)
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
            self._client(tenant, origin).views_open(trigger_id=body.get("trigger_id"), view=view)
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
            resp = self._client(origin.team, origin).chat_getPermalink(channel=channel, message_ts=ts)
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
            self._client(tenant, origin).views_publish(user_id=user, view=view)
        except Exception as exc:  # noqa: BLE001
            log_api_error("views.publish", exc, user=user)


__all__ = ["SlackAdapter", "Origin", "FORM_CALLBACK"]
