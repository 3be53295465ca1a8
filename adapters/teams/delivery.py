"""Sending effects to Teams: in the current turn, or proactively from stored references.

- `Outbound.private_for` (no ephemeral messages in Teams) → the reply goes to the person's
  personal chat and a short public acknowledgement (`teams.private_ack`) to the conversation.
- `Outbound.to=UserRef` → the personal chat (stored reference, or a new 1:1 conversation
  when the tenant's service URL is known).
- `Outbound.anchor` → the earlier activity is updated in place (ids kept in PostedMessage).
- Under a delivery attempt (bot/delivery.py: the outbox, digests), the id of each activity sent
  is noted for the attempt's key (store/outbox.py `note_step`) as soon as the Bot Connector
  answers; a retry of the key updates that activity in place instead of sending it again (a
  process killed before "sent" was written). A send whose answer never came (a 5xx or 504
  after the Connector took it, a dropped connection) has no id to note: its retry sends again,
  at least once, since a bot cannot read a chat's messages without Graph to look for it.
- `FetchHistory` → a localized explanation: Bot Framework cannot read history without Graph.
- `SpaceChange` → the person who approved it is told what to click (`manual_key`): a bot cannot
  create channels nor add members without Graph.
Every call is paced per conversation and retried on 429/412/502/504.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Awaitable, Callable, Mapping, Sequence

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, Attachment, ChannelAccount, ConversationParameters, ConversationReference, Mention

from adapters.shell import DeliveryShell
from adapters.teams import references as refs
from adapters.teams.pacing import RETRY_STATUSES, Pacer, Retrying, http_status
from adapters.teams.render import NO_NAMES, render
from adapters.teams.wire import to_wire
from bot.context import Services
from bot.delivery import DeliveryFailed, current_attempt
from bot.text import marker_ids, ping_marker, reply_texts
from bot.types import ConversationRef, Effect, FetchHistory, Outbound, Reply, SpaceChange, UserRef

log = logging.getLogger(__name__)
Observer = Callable[[Outbound, Mapping[str, Any]], None]


def to_activity(data: Mapping[str, Any]) -> Activity:
    """A rendered message (wire JSON from render.py) → botbuilder Activity. Mention entities are
    `Mention` objects, which msrest serializes whole (plain `Entity` objects lose `text` and `mentioned`)."""
    mentions = [Mention(mentioned=ChannelAccount(id=e["mentioned"]["id"], name=e["mentioned"].get("name")),
                        text=e["text"], type="mention")
                for e in data.get("entities") or [] if e.get("type") == "mention"]
    attachments = [Attachment(content_type=a["contentType"], content=a["content"]) for a in data.get("attachments") or []]
    return Activity(type=data.get("type") or "message", text=data.get("text"), text_format=data.get("textFormat"),
                    entities=mentions or None, attachments=attachments or None)


def sent_step(conversation_id: str) -> str:
    """The delivery step (store/outbox.py) of what an attempt sent to `conversation_id`: an
    effect may send to two conversations (a private answer and its public acknowledgement)."""
    return "teams.sent:" + hashlib.sha1(conversation_id.encode()).hexdigest()[:20]


def base_conversation_id(conversation_id: str) -> str:
    return conversation_id.split(";messageid=")[0]


class Delivery:
    def __init__(self, services: Services, adapter: Any, app_id: str, *, pacer: Pacer | None = None,
                 retrying: Retrying | None = None, observer: Observer | None = None) -> None:
        self.services = services
        self.shell = DeliveryShell(services)
        self.adapter = adapter
        self.app_id = app_id
        self.pacer = pacer or Pacer()
        self.retrying = retrying or Retrying()
        self.observer = observer

    # Entry point -----------------------------------------------------------
    async def deliver(self, effects: Sequence[Effect], turn: TurnContext | None = None, *, strict: bool = False) -> None:
        """Send every effect; a failure is logged and does not stop the others. Proactive sends
        (no `turn`: jobs, the outbox) and `strict` ones (a turn's replies recorded in the outbox)
        then raise DeliveryFailed naming the effects whose retries were spent (bot/delivery.py),
        so their caller retries them later."""
        failed: list[DeliveryFailed] = []
        for effect in effects:
            try:
                if isinstance(effect, FetchHistory):
                    await self._history_unavailable(effect, turn)
                elif isinstance(effect, SpaceChange):
                    await self._space_by_hand(effect, turn)
                elif isinstance(effect, Outbound):
                    await self._outbound(effect, turn)
            except Exception as exc:  # noqa: BLE001 - one failed delivery must not lose the rest
                status, retry_after = http_status(exc)
                if (status is not None and (status in RETRY_STATUSES or status >= 500)) or \
                        (status is None and isinstance(exc, (OSError, asyncio.TimeoutError))):  # Retrying gave up
                    log.warning("teams: delivery of %s failed for now: %s", type(effect).__name__, status or repr(exc))
                    failed.append(DeliveryFailed(f"teams: {status or type(exc).__name__}", failed=(effect,), retry_after=retry_after))
                    continue
                log.exception("teams: delivery of %s failed", type(effect).__name__)
        if failed and (turn is None or strict):
            raise DeliveryFailed.merge(failed)

    async def _outbound(self, effect: Outbound, turn: TurnContext | None) -> None:
        to = effect.to
        if isinstance(to, UserRef):
            await self._to_person(to, effect, turn)
            return
        if effect.private_for is not None and to.kind != "dm":
            person = effect.private_for
            try:
                reached = await self._to_person(person, effect, turn)
            except Exception:  # noqa: BLE001 - still tell the channel, so nobody waits for an answer
                log.exception("teams: private answer to %s failed", person.id)
                reached = False
            key = "teams.private_ack" if reached else "teams.private_unreachable"
            locale = await asyncio.to_thread(self.shell.locale, to.tenant, conversation_id=to.id, private=False)  # everyone reads it
            ack = Reply(text=self.services.prompts.t(locale, key, name=ping_marker(person.id)), key=key)
            await self._to_conversation(to, Outbound(ack, to, thread_id=effect.thread_id), turn, observe=False)
            return
        await self._to_conversation(to, effect, turn)

    async def _history_unavailable(self, effect: FetchHistory, turn: TurnContext | None) -> None:
        person, conv = effect.requested_by, effect.conversation
        locale = await asyncio.to_thread(self.shell.locale, conv.tenant, person.id if person else None, conv.id,
                                         private=person is not None)
        reply = Reply(text=self.services.prompts.t(locale, "teams.history_unavailable"), key="teams.history_unavailable")
        if person is not None:
            await self._to_person(person, Outbound(reply, person), turn)
        else:
            await self._to_conversation(effect.conversation, Outbound(reply, effect.conversation), turn)

    async def _space_by_hand(self, effect: SpaceChange, turn: TurnContext | None) -> None:
        """A Teams bot cannot create channels nor add people without Graph: the person who
        approved gets the clicks that do it (`manual_key`)."""
        person = effect.report_to
        if person is None or not effect.manual_key:
            return
        locale = await asyncio.to_thread(self.shell.locale, effect.channel.tenant, person.id, None, private=True)
        text = self.services.prompts.t(locale, effect.manual_key, **effect.params)
        await self._to_person(person, Outbound(Reply(text=text, key=effect.manual_key), person), turn)

    # Rendering -------------------------------------------------------------
    async def _render(self, reply: Reply, tenant: str, person_id: str | None, conversation_id: str | None,
                      *, private: bool) -> dict[str, Any]:
        """The activity for `reply`; the adapter's own strings (truncation, default labels) in the
        language of the one locale rule, looked up only when one is needed."""
        texts = reply_texts(reply)
        users, channels = marker_ids(texts)
        names = await asyncio.to_thread(self.shell.names, tenant, texts) if users or channels else NO_NAMES
        return render(reply, names, self.shell.translator(tenant, person_id, conversation_id, private=private))

    # Targets ---------------------------------------------------------------
    async def _to_conversation(self, to: ConversationRef, effect: Outbound, turn: TurnContext | None, observe: bool = True) -> None:
        private = to.kind == "dm"
        reader = effect.private_for.id if effect.private_for else self._speaker(turn, to.id) if private else None
        activity = await self._render(effect.reply, to.tenant, reader, to.id, private=private)
        if observe and self.observer:
            self.observer(effect, activity)
        if turn is not None and self._is_current(turn, to.id):
            await self._send_in(turn, to.tenant, to.id, activity, effect.anchor)
            return
        stored = await asyncio.to_thread(self._reference, to.tenant, to.id)
        if stored is None:
            log.warning("teams: no stored conversation reference for %s in tenant %s; message %r not sent. "
                        "Hint: add the Causette app to that team or chat (its conversationUpdate stores the reference).",
                        to.id, to.tenant, effect.reply.key)
            return
        reference = dict(stored.reference)
        thread = effect.thread_id
        if thread and stored.kind in ("public", "private"):
            reference["conversation"] = {**reference.get("conversation", {}), "id": f"{to.id};messageid={thread}"}
        await self._continue(reference, to.tenant, to.id, activity, effect.anchor)

    async def _to_person(self, person: UserRef, effect: Outbound, turn: TurnContext | None) -> bool:
        """Into the person's personal chat; False when there is no way to reach them."""
        activity = await self._render(effect.reply, person.tenant, person.id, None, private=True)
        if self.observer:
            self.observer(effect, activity)
        if turn is not None and self._is_personal_with(turn, person.id):
            await self._send_in(turn, person.tenant, base_conversation_id(turn.activity.conversation.id), activity, effect.anchor)
            return True
        stored = await asyncio.to_thread(self._personal, person.tenant, person.id)
        if stored is not None:
            await self._continue(stored.reference, person.tenant, stored.conversation_id, activity, effect.anchor)
            return True
        base = await asyncio.to_thread(self._any, person.tenant)
        if base is None or not base.service_url:
            log.warning("teams: cannot reach %s (tenant %s) in a personal chat: no stored reference and no service URL "
                        "known for the tenant. Hint: the person (or an admin for them) should install the Causette app "
                        "for personal use.", person.id, person.tenant)
            return False
        await self._create_personal(person, base, activity, effect.anchor)
        return True

    # Calls -----------------------------------------------------------------
    @staticmethod
    def _is_current(turn: TurnContext, conversation_id: str) -> bool:
        if turn.activity.type == "event":  # a proactive turn (continue / create conversation)
            return False
        conv = turn.activity.conversation
        return conv is not None and base_conversation_id(conv.id or "") == conversation_id

    @classmethod
    def _speaker(cls, turn: TurnContext | None, conversation_id: str) -> str | None:
        """Who wrote the activity of `turn` in `conversation_id` (the reader of a reply in a DM)."""
        if turn is None or not cls._is_current(turn, conversation_id) or turn.activity.from_property is None:
            return None
        return turn.activity.from_property.id

    @staticmethod
    def _is_personal_with(turn: TurnContext, user_id: str) -> bool:
        act = turn.activity
        if act.conversation is None or act.from_property is None or act.type == "event":
            return False
        kind = act.conversation.conversation_type or ("personal" if not act.conversation.is_group else "")
        return kind == "personal" and act.from_property.id == user_id

    async def _send_in(self, turn: TurnContext, tenant: str, conversation_id: str, activity: Mapping[str, Any], anchor: str | None) -> None:
        """Send `activity`, or update the activity it was sent as before: `anchor`'s, or, on a
        retry of a delivery attempt, the one an earlier attempt sent (its id noted once the Bot
        Connector answered: a process killed before the outbox marked the row sent leaves it)."""
        previous = await asyncio.to_thread(self.shell.anchor, tenant, anchor, conversation_id) if anchor else None
        attempt = current_attempt()
        step = sent_step(conversation_id)
        if previous is None and attempt is not None and attempt.retry:
            noted = await asyncio.to_thread(self.shell.recall_step, attempt.key, step, attempt.since)
            if noted is not None and noted[0].get("id"):
                previous = str(noted[0]["id"])
                log.info("teams: %s was sent by an earlier attempt (%s): updated in place", attempt.key, previous)
        sent_id = await self._send(turn, conversation_id, activity, previous)
        if anchor and sent_id and sent_id != previous:
            await asyncio.to_thread(self.shell.remember_anchor, tenant, anchor, conversation_id, sent_id)
        if attempt is not None and sent_id and sent_id != previous:
            await asyncio.to_thread(self.shell.note_step, attempt.key, step, {"id": sent_id})

    async def _continue(self, reference: Mapping[str, Any], tenant: str, conversation_id: str,
                        activity: Mapping[str, Any], anchor: str | None) -> None:
        async def callback(turn: TurnContext) -> None:
            await self._send_in(turn, tenant, conversation_id, activity, anchor)

        ref = ConversationReference().deserialize(dict(reference))
        await self.adapter.continue_conversation(ref, callback, self.app_id)

    async def _create_personal(self, person: UserRef, base: refs.StoredReference, activity: Mapping[str, Any], anchor: str | None) -> None:
        params = ConversationParameters(is_group=False, bot=ChannelAccount(id=base.bot_id or self.app_id),
                                        members=[ChannelAccount(id=person.id)], tenant_id=person.tenant,
                                        channel_data={"tenant": {"id": person.tenant}})

        async def callback(turn: TurnContext) -> None:
            conv_id = turn.activity.conversation.id
            reference = to_wire(TurnContext.get_conversation_reference(turn.activity))
            reference.pop("activityId", None)
            reference.setdefault("bot", {"id": base.bot_id or self.app_id})
            reference["conversation"] = {**(reference.get("conversation") or {}), "conversationType": "personal",
                                         "tenantId": person.tenant}
            await asyncio.to_thread(self._save_personal, person, conv_id, reference)
            await self._send_in(turn, person.tenant, conv_id, activity, anchor)

        async def create() -> None:
            await self.pacer.wait("create:" + person.tenant)
            await self.adapter.create_conversation(self.app_id, callback, params, "msteams", base.service_url, None)

        await self.retrying.run(create, "create personal chat")

    async def _send(self, turn: TurnContext, conversation_id: str, activity: Mapping[str, Any], update_id: str | None) -> str | None:
        async def call() -> str | None:
            await self.pacer.wait(conversation_id)
            message = to_activity(activity)
            if update_id:
                message.id = update_id
                await turn.update_activity(message)
                return update_id
            response = await turn.send_activity(message)
            return getattr(response, "id", None)

        return await self.retrying.run(call, "send to " + conversation_id)

    # Store (run in threads) ------------------------------------------------
    def _reference(self, tenant: str, conversation_id: str) -> refs.StoredReference | None:
        with self.services.db.session(tenant) as s:
            return refs.for_conversation(s, conversation_id)

    def _personal(self, tenant: str, user_id: str) -> refs.StoredReference | None:
        with self.services.db.session(tenant) as s:
            return refs.personal_chat(s, user_id)

    def _any(self, tenant: str) -> refs.StoredReference | None:
        with self.services.db.session(tenant) as s:
            return refs.any_reference(s)

    def _save_personal(self, person: UserRef, conversation_id: str, reference: Mapping[str, Any]) -> None:
        with self.services.db.session(person.tenant) as s:
            refs.save_reference(s, person.tenant, conversation_id=conversation_id, kind="dm", user_id=person.id, team_id="",
                                reference=reference, now=self.services.clock.now())


def run_sync(loop: asyncio.AbstractEventLoop | None, coro_factory: Callable[[], Awaitable[None]], timeout: float = 120.0) -> None:
    """Run delivery from a plain thread (the scheduler's) on the server's event loop."""
    if loop is None or loop.is_closed():
        asyncio.run(_call(coro_factory))
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(_call(coro_factory))
        return
    asyncio.run_coroutine_threadsafe(_call(coro_factory), loop).result(timeout)


async def _call(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()
