"""One Teams turn: parse the activity, deduplicate, store the reference, run the core, deliver.

Adapter-agnostic: runs under botbuilder's CloudAdapter (the inbox worker rebuilds each turn
from its stored activity, see adapters/teams/inbox.py) and its TestAdapter (tests).

Deduplication: an activity's id is claimed once (`DeliveryShell.claim`). Processing an inbox
row (`work` given), the claim is only checked here and written by the transaction of the
activity's main event (its last one), together with the row's "done" (`RowWork.commit`);
without a row (TestAdapter) it is committed before the work, as a replayed activity must
still have one effect.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Callable, Sequence

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from sqlalchemy.orm import Session

from adapters.teams import inbound
from adapters.teams import references as refs
from adapters.teams.delivery import Delivery
from adapters.teams.inbox import RowWork
from adapters.teams.roster import sync_roster
from bot import outbox
from bot.core import Bot
from bot.outbox import Leased
from bot.types import ConversationRef, Effect, Event, MembersChanged, Outbound, Reply

log = logging.getLogger(__name__)
_STORES_REFERENCE = ("message", "conversationUpdate", "installationUpdate")
CHANNEL_LIST_SECONDS = 600.0
CHANNEL_LIST_TIMEOUT = 5
SENDER_THREADS = 8
SEND_SECONDS = 300.0  # one reply's paced, retried send; past it the outbox row backs off and is retried


class TeamsTurn:
    def __init__(self, bot: Bot, delivery: Delivery, *, page_size: int = 200, welcome: bool = True) -> None:
        self.bot = bot
        self.delivery = delivery
        self.page_size = page_size
        self.welcome = welcome
        self._stored: set[tuple[str, str, str]] = set()  # references already written by this process
        self._channel_types: dict[tuple[str, str], tuple[float | None, dict[str, str]]] = {}  # (tenant, team) → read at, id → type
        # Threads that wait on sends (`_send_recorded`), apart from the loop's default executor,
        # which the sends themselves use: waiting there could take every thread they need.
        self._senders = ThreadPoolExecutor(max_workers=SENDER_THREADS, thread_name_prefix="teams-send")

    async def on_turn(self, turn: TurnContext, work: RowWork | None = None) -> None:
        activity: dict[str, Any] = to_dict(turn.activity)
        try:
            parsed = inbound.parse(activity)
        except inbound.BadActivity as exc:
            log.info("teams: ignored %s activity: %s", activity.get("type"), exc)
            return
        if parsed.events and not parsed.kind_certain:
            parsed = await self._confirm_standard(turn, parsed)
        conv = parsed.conversation
        assert conv is not None
        reference = None
        cache_key = (parsed.tenant, conv.id, activity.get("serviceUrl") or "")
        if activity.get("type") in _STORES_REFERENCE and activity.get("serviceUrl") and \
                (cache_key not in self._stored or activity.get("type") != "message"):  # installs always rewrite
            reference = refs.reference_from_activity(activity, conv.id)
        if not parsed.events and reference is None:
            return  # typing indicators, read receipts, the bot's own echoes: nothing to record
        if parsed.bot_joined or parsed.members_added:  # the roster is read between claiming and handling
            fresh, events = await asyncio.to_thread(self._start, parsed, reference, work)
            if fresh:
                events = list(await sync_roster(turn, events[0].conversation if events else conv, parsed, self.page_size)) + events
            effects = await asyncio.to_thread(self._handle, events, work) if fresh else []
        else:  # the common case: one hop to a worker thread for all store work
            fresh, effects = await asyncio.to_thread(self._start_and_handle, parsed, reference, work)
        if not fresh:
            log.info("teams: activity %s already handled (retried delivery)", parsed.dedup_key)
            return
        if reference is not None:
            self._stored.add(cache_key)
        leased = work.outbox if work is not None else None
        if leased is None:
            await self.delivery.deliver(effects, turn)
            return
        recorded = {id(e) for e in work.recorded}  # type: ignore[union-attr]
        await self.delivery.deliver([e for e in effects if id(e) not in recorded], turn)  # the roster's, the welcome
        await self._send_recorded(turn, leased, work.recorded)  # type: ignore[union-attr]

    async def _send_recorded(self, turn: TurnContext, leased: Leased, effects: Sequence[Effect]) -> None:
        """The committed main event's replies, in this turn, through its outbox row: marked sent
        when the Bot Connector took them all; else the row backs off and the outbox sweeper sends
        what is left, proactively (bot/outbox.py). `outbox.deliver` blocks (its database writes,
        each send awaited): it runs in a thread of its own pool, each send on this loop."""
        loop = asyncio.get_running_loop()
        services = self.bot.services

        def send(items: Sequence[Effect]) -> None:
            asyncio.run_coroutine_threadsafe(self.delivery.deliver(items, turn, strict=True), loop).result(SEND_SECONDS)

        await loop.run_in_executor(self._senders, lambda: outbox.deliver(services.db, services.clock, leased, send, effects))

    # Worker-thread side ---------------------------------------------------------
    def _start(self, parsed: inbound.Parsed, reference: dict[str, Any] | None,
               work: RowWork | None = None) -> tuple[bool, list[Event]]:
        """Claim the activity id (or, for an inbox row, check it and leave the claim to the main
        event's transaction), store the reference; the events to handle (none when retried)."""
        conv = parsed.conversation
        assert conv is not None
        shell = self.delivery.shell
        key = parsed.dedup_key
        if key is not None:
            if work is not None and not parsed.events:  # only a reference to store (idempotent): no claim
                fresh = not shell.seen(parsed.tenant, key)
            else:
                fresh = shell.claim(parsed.tenant, key, work)
            if not fresh:
                return False, []
        if reference is not None:  # idempotent: stored now, the claim (of an inbox row) with the work
            sender_id = parsed.sender.id if parsed.sender else ""
            removed = any(isinstance(e, MembersChanged) and e.bot_left for e in parsed.events)
            refs.remember(self.bot.services.db, parsed.tenant, conv.id, reference, conv.kind,
                          sender_id if conv.kind == "dm" else "", parsed.team_id, self.bot.services.clock.now(),
                          installed=not removed)
        return True, list(parsed.events)

    def _handle(self, events: list[Event], work: RowWork | None = None) -> list[Effect]:
        """Each event in its own transaction; the last one's also writes the inbox row's claim
        and "done" (earlier ones, roster profiles and memberships, are safe to run again)."""
        effects: list[Effect] = []
        for index, event in enumerate(events):
            if work is not None and index == len(events) - 1:
                produced = self.bot.handle(event, in_transaction=work.commit, record=self._recorder(work))
            else:
                produced = self.bot.handle(event)
            effects += produced
            if isinstance(event, MembersChanged) and event.bot_joined and self.welcome and not produced:
                effects.append(self._welcome(event.conversation))  # the core had nothing to say on arrival
        return effects

    def _recorder(self, work: RowWork) -> Callable[[Session, Sequence[Effect]], None]:
        """Writes the main event's replies to the durable outbox, in its transaction, leased to
        this process, which sends them right after the commit (`_send_recorded`)."""
        def record(session: Session, effects: Sequence[Effect]) -> None:
            work.outbox = outbox.record(session, effects, self.bot.services.clock.now(), source="teams",
                                        token=outbox.new_token("teams"))
            work.recorded = list(effects)

        return record

    def _start_and_handle(self, parsed: inbound.Parsed, reference: dict[str, Any] | None,
                          work: RowWork | None = None) -> tuple[bool, list[Effect]]:
        fresh, events = self._start(parsed, reference, work)
        return fresh, self._handle(events, work) if fresh else []

    # Conversation kind ------------------------------------------------------------
    async def _confirm_standard(self, turn: TurnContext, parsed: inbound.Parsed) -> inbound.Parsed:
        """A channel Teams did not describe stays private unless the team's channel list says
        it is standard; then it (and its events) are public."""
        conv = parsed.conversation
        if conv is None or not parsed.team_id or await self._channel_type(turn, parsed.tenant, parsed.team_id, conv.id) != "standard":
            return parsed
        public = replace(conv, kind="public")
        events = tuple(replace(e, conversation=public) if getattr(e, "conversation", None) == conv else e  # type: ignore[type-var]
                       for e in parsed.events)
        return replace(parsed, conversation=public, events=events, kind_certain=True)

    async def _channel_type(self, turn: TurnContext, tenant: str, team_id: str, channel_id: str) -> str:
        """The channel's type in its team's channel list (TeamsInfo), read at most once per
        CHANNEL_LIST_SECONDS per team; "" when Teams does not say."""
        key = (tenant, team_id)
        read_at, types = self._channel_types.get(key, (None, {}))
        if channel_id not in types and (read_at is None or time.monotonic() - read_at > CHANNEL_LIST_SECONDS):
            try:
                channels = await self._team_channels(turn, team_id)
                types = {str(c.id): str(getattr(c, "type", "") or "").casefold() for c in channels or [] if getattr(c, "id", None)}
            except Exception as exc:  # noqa: BLE001 - unknown means private
                log.warning("teams: channel list of team %s unavailable (%r): its undescribed channels stay private", team_id, exc)
                types = {}
            self._channel_types[key] = (time.monotonic(), types)
        return types.get(channel_id, "")

    @staticmethod
    async def _team_channels(turn: TurnContext, team_id: str) -> list[Any]:
        """TeamsInfo.get_team_channels without its blocking HTTP call on the event loop: the
        Teams connector client is synchronous (msrest), so it runs in a thread, briefly."""
        connector = await TeamsInfo.get_teams_connector_client(turn)
        connector.config.connection.timeout = CHANNEL_LIST_TIMEOUT
        connector.config.retry_policy.retries = 1
        return await asyncio.to_thread(lambda: connector.teams.get_teams_channels(team_id).conversations)

    def _welcome(self, conv: ConversationRef) -> Outbound:
        t = self.delivery.shell.translator(conv.tenant, conversation_id=conv.id, private=conv.kind == "dm")
        return Outbound(Reply(text=t("teams.welcome"), key="teams.welcome"), conv)


def to_dict(activity: Any) -> dict[str, Any]:
    from adapters.teams.wire import to_wire

    data = to_wire(activity)
    return data if isinstance(data, dict) else {}
