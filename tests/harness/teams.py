"""The Teams harness: scenario steps become Teams activities run through botbuilder's
TestAdapter and the real Teams turn logic (parsing, dedup, core, rendering, delivery).

It reports, for every reply the delivery rendered (seen through its observer), its prompt
key and the plain text of the activity.

Buttons and forms (tests/scenarios `Step.press` / `Step.submit`) as Teams does them: the
rendered Adaptive Card's `Action.Submit` comes back as a message activity whose `value` is the
action's data (`command`) plus, for a form, every input's value (the card's own, or the step's).
"""
from __future__ import annotations

import asyncio
import html
import itertools
import re
from dataclasses import replace
from typing import Any, Iterator, Mapping

from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount
from sqlalchemy import select

from adapters.console.seed import seed_demo
from adapters.teams import references as refs
from adapters.teams.delivery import Delivery
from adapters.teams.pacing import Pacer
from adapters.teams.render import cards_of, plain_text
from adapters.teams.turn import TeamsTurn
from bot.core import Bot
from bot.types import ConversationRef, Effect, Outbound, UserRef
from store.models.core import Conversation, Person
from tests.harness import advance
from tests.scenarios import Seen, Step

TENANT = "tenant-demo"
BOT_ID = "28:causette-bot"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+)")


def user_id(handle: str) -> str:
    return "29:" + handle


def channel_id(name: str) -> str:
    return "19:" + name + "@thread.tacv2"


class TeamsHarness:
    platform = "teams"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        seed_demo(bot, tenant=TENANT, platform="teams", user_id=user_id, channel_id=channel_id)
        self.adapter = TestAdapter(template_or_conversation=Activity(
            channel_id="msteams", service_url=SERVICE_URL, recipient=ChannelAccount(id=BOT_ID, name="Causette"),
            from_property=ChannelAccount(id="29:nobody"), conversation=ConversationAccount(id="none")))
        self.recorded: list[Outbound] = []  # every reply delivery rendered, in order
        self.rendered: list[str] = []  # and the plain text of its activity
        self.shown: list[tuple[str | None, Outbound, Mapping[str, Any]]] = []  # (who alone reads it, reply, activity)
        self.sent_forms: set[int] = set()  # indexes in `shown` of the forms sent
        self.delivery = Delivery(bot.services, self.adapter, "", pacer=Pacer(windows=()), observer=self._observe)
        self.turn = TeamsTurn(bot, self.delivery)
        self.adapter.logic = self.turn.on_turn
        self._ids = itertools.count(1)
        self.people, self.channels = self._directory()
        self._store_personal_chats()

    # Setup -----------------------------------------------------------------
    def _directory(self) -> tuple[dict[str, Person], dict[str, Conversation]]:
        with self.bot.services.db.session(TENANT) as s:
            people = {p.handle: p for p in s.scalars(select(Person))}
            channels = {c.name: c for c in s.scalars(select(Conversation))}
        return people, channels

    def _store_personal_chats(self) -> None:
        """As when the app is installed for everyone: each person has a personal chat reference."""
        now = self.bot.services.clock.now()
        with self.bot.services.db.session(TENANT) as s:
            for handle, person in self.people.items():
                if person.is_bot:
                    continue
                conv = "a:dm-" + handle
                reference = {"bot": {"id": BOT_ID, "name": "Causette"}, "user": {"id": person.external_id},
                             "conversation": {"id": conv, "conversationType": "personal", "tenantId": TENANT},
                             "channelId": "msteams", "serviceUrl": SERVICE_URL}
                refs.save_reference(s, TENANT, conversation_id=conv, kind="dm", user_id=person.external_id, team_id="",
                                    reference=reference, now=now)

    def _observe(self, outbound: Outbound, activity: Mapping[str, Any]) -> None:
        """Delivery's observer: each reply as rendered for Teams (nothing of the bot is wrapped)."""
        self.recorded.append(outbound)
        self.rendered.append(plain_text(activity))
        self.shown.append((_reader(outbound), outbound, activity))

    # Activities ------------------------------------------------------------
    def activity(self, step: Step) -> dict[str, Any]:
        person = self.people.get(step.user)
        sender = {"id": user_id(step.user), "name": person.display_name if person else step.user,
                  "aadObjectId": "aad-" + step.user}
        entities: list[dict[str, Any]] = []
        parts: list[str] = []
        pos = 0
        for m in _MENTION.finditer(step.text):
            target = self.people.get(m.group(1).lower())
            if target is None or target.is_bot:
                continue
            parts.append(html.escape(step.text[pos : m.start()], quote=False))
            at = f"<at>{html.escape(target.display_name, quote=False)}</at>"
            parts.append(at)
            entities.append({"type": "mention", "text": at, "mentioned": {"id": target.external_id, "name": target.display_name}})
            pos = m.end()
        parts.append(html.escape(step.text[pos:], quote=False))
        text = "".join(parts)
        channel_data: dict[str, Any] = {"tenant": {"id": TENANT}}
        if step.where == "dm":
            conversation = {"id": "a:dm-" + step.user, "conversationType": "personal", "tenantId": TENANT}
        else:
            name = step.where.lstrip("#")
            chan = self.channels.get(name)
            membership = "private" if chan is not None and chan.kind == "private" else "standard"
            conversation = {"id": channel_id(name), "conversationType": "channel", "tenantId": TENANT}
            channel_data.update(channel={"id": channel_id(name), "name": name, "membershipType": membership},
                                team={"id": channel_id("general")})
            if step.command:
                at = "<at>Causette</at>"
                text = f"{at} {text}"
                entities.insert(0, {"type": "mention", "text": at, "mentioned": {"id": BOT_ID, "name": "Causette"}})
        return {"type": "message", "id": f"harness-{next(self._ids)}", "channelId": "msteams", "serviceUrl": SERVICE_URL,
                "timestamp": self.bot.services.clock.now().isoformat(), "from": sender, "recipient": {"id": BOT_ID, "name": "Causette"},
                "conversation": conversation, "channelData": channel_data, "text": text, "entities": entities,
                "textFormat": "plain"}

    def send(self, activity: Mapping[str, Any]) -> None:
        asyncio.run(self.adapter.receive_activity(Activity().deserialize(dict(activity))))

    def _advance(self, spec: str) -> None:
        def deliver(effects: list[Effect]) -> None:
            if effects:
                asyncio.run(self.delivery.deliver(effects))

        advance(self.bot, spec, deliver)

    # Buttons and forms -----------------------------------------------------------
    def _card_submit(self, step: Step, reader: str | None, outbound: Outbound, value: Mapping[str, Any]) -> None:
        """An Action.Submit pressed on a card: a message activity with `value` and no text, in
        the conversation the card is in (a DM for what only `step.user` reads)."""
        where = "dm" if reader is not None else step.where
        if reader is None and isinstance(outbound.to, ConversationRef) and outbound.to.name:
            where = "#" + outbound.to.name
        activity = self.activity(replace(step, where=where, text="", command=False))
        activity.update(text="", entities=[], value=dict(value))
        self.send(activity)

    def _press(self, step: Step) -> None:
        for reader, outbound, activity in reversed(self.shown):
            if reader not in (None, step.user):
                continue
            data = next((a["data"] for a in _submits(activity)
                         if str((a.get("data") or {}).get("command", "")).startswith(step.press)), None)
            if data is not None:
                self._card_submit(step, reader, outbound, data)
                return
        raise AssertionError(f"no button {step.press!r} was shown to {step.user} on Teams")

    def _submit(self, step: Step) -> None:
        forms = [i for i, (reader, outbound, _) in enumerate(self.shown)
                 if reader in (None, step.user) and outbound.reply.form is not None]
        assert forms, f"no form was shown to {step.user} on Teams"
        unsent = [i for i in forms if i not in self.sent_forms]
        index = (unsent or forms)[-1]  # a card stays in the chat: it can be sent again
        self.sent_forms.add(index)
        reader, outbound, activity = self.shown[index]
        form = outbound.reply.form
        assert form is not None
        inputs = {el["id"]: el for card in cards_of(activity) for el in _elements(card.get("body") or [])
                  if str(el.get("type", "")).startswith("Input.")}
        values = dict(step.submit or {})
        assert set(values) <= set(inputs), f"the card has no input {set(values) - set(inputs)}"
        [data] = [a["data"] for a in _submits(activity) if (a.get("data") or {}).get("command") == form.submit_command]
        submitted: dict[str, Any] = {**data, **{name: str(el.get("value", "")) for name, el in inputs.items()}}
        for name, value in values.items():
            if inputs[name]["type"] == "Input.Toggle":
                value = inputs[name]["valueOn"] if value.lower() in ("1", "true", "yes", "on") else inputs[name]["valueOff"]
            elif inputs[name]["type"] == "Input.ChoiceSet":
                assert value in {c["value"] for c in inputs[name]["choices"]}, f"{value!r} is not a choice of {name}"
            submitted[name] = value
        self._card_submit(step, reader, outbound, submitted)

    # Harness protocol -----------------------------------------------------------
    def run_step(self, step: Step) -> list[Seen]:
        if step.advance:
            self._advance(step.advance)
        self.recorded, self.rendered = [], []
        if step.text:
            self.send(self.activity(step))
        if step.press:
            self._press(step)
        if step.submit is not None:
            self._submit(step)
        return [Seen(o.reply.key, text) for o, text in zip(self.recorded, self.rendered)]


def _reader(outbound: Outbound) -> str | None:
    """Who alone reads `outbound` (a handle), None for a channel post."""
    if outbound.private_for is not None:
        return outbound.private_for.id.removeprefix("29:")
    to = outbound.to
    if isinstance(to, UserRef):
        return to.id.removeprefix("29:")
    if to.kind == "dm":
        return to.id.removeprefix("a:dm-")
    return None


def _elements(elements: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for el in elements:
        yield el
        yield from _elements(el.get("items") or [])
        yield from _elements(el.get("actions") or [])


def _submits(activity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every Action.Submit of the activity's cards (the card's actions and its ActionSets)."""
    out: list[dict[str, Any]] = []
    for card in cards_of(activity):
        out += [a for a in card.get("actions") or [] if a.get("type") == "Action.Submit"]
        out += [el for el in _elements(card.get("body") or []) if el.get("type") == "Action.Submit"]
    return out
