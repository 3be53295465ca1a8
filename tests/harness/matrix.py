"""The Matrix harness: scenario steps typed by real people's Matrix clients (matrix-nio) on a
real Synapse, answered by Causette's real Matrix adapter (its nio sync loop, durable inbox,
core, render and sender), and received back by the people's clients.

The homeserver, its users and rooms are made once per test session (tests/conftest.py
`matrix_world`, tests/matrix/world.py); each test gets a fresh bot database seeded with the
demo organisation on the matrix platform (the tenant is the homeserver's name, people are
`@<handle>:causette.test`, channels the session's rooms) and a fresh start of the adapter.

A step is sent as a person would type it in Element: a command as `!causette <command>`, in
a room or in the person's direct chat with the bot (where the prefix also leaves a guided form
in progress; a direct chat without it is covered by tests/test_matrix_live.py), an ambient
message as plain text; `@handle` becomes a pill (the display name in `body`, a matrix.to link in `formatted_body`,
the user in `m.mentions`). The harness waits for the adapter to have handled the event
(nothing is slept), reports every reply the sender rendered (its observer) with its prompt
key and plain body, and checks that each reply reached the room it was meant for: the
recipient's own client must receive, from the bot, a message with that body.

Buttons and forms (tests/scenarios `Step.press` / `Step.submit`) as a Matrix person does them
in Element (a card is a message whose buttons are numbered commands; a form a guided exchange
in the direct chat, adapters/matrix/forms.py):
- press: the person's own client finds, among the bot's messages it received (edits applied),
  the most recent card listing a command that starts with `press`, and presses that number:
  by reacting with its keycap (1️⃣…) or by replying to the card with the number, in turn, so
  both ways are played through the homeserver.
- submit: the person answers the guided exchange in progress in their direct chat, question by
  question, as the questions arrive: a select by the number shown beside the choice (or the
  choice itself when the choices are numbers, an eNPS score), a checkbox `yes`/`no`, text as
  typed; a field the step does not name keeps what the form showed (`=`), or is left empty
  (`-`) when optional. The questions after the first are the form itself, not replies of the
  step (as the Slack harness does not report the modal); the replies of the last answer are.
  Matrix keeps one exchange per person: a form opened again replaces the one in progress, and
  a sent one is over, so a `submit` with no exchange in progress sends nothing.
- what a step's `advance` delivered (jobs: a survey's invitation) must reach the people's
  clients too (so a press can find its card); it is not reported among the step's replies.
"""
from __future__ import annotations

import asyncio
import html
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import select

from adapters.console.seed import seed_demo
from bot.core import Bot
from adapters.matrix.render import KEYCAPS
from bot.types import Effect, Form, FormField, Outbound, UserRef
from store.models.inbox import InboxEvent
from tests.harness import advance
from tests.matrix.world import Humans, Received, World
from tests.scenarios import Seen, Step

_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+)")
HANDLED_TIMEOUT = 30.0


def content_of(world: World, step_text: str) -> tuple[str, str, list[str]]:
    """(body, formatted_body or "", mentioned user ids) of text typed in Element: each
    `@handle` of a known person (or the bot) a pill."""
    body: list[str] = []
    formatted: list[str] = []
    mentioned: list[str] = []
    pos = 0
    for m in _MENTION.finditer(step_text):
        handle = m.group(1).lower()
        if handle == "causette":
            user, name = world.bot.user_id, "Causette"  # type: ignore[union-attr]
        elif handle in world.accounts:
            user, name = world.user_id(handle), world.names.get(handle, handle)
        else:
            continue
        body.append(step_text[pos : m.start()])
        formatted.append(html.escape(step_text[pos : m.start()], quote=False))
        body.append(name)
        formatted.append(f'<a href="https://matrix.to/#/{user}">{html.escape(name, quote=False)}</a>')
        mentioned.append(user)
        pos = m.end()
    body.append(step_text[pos:])
    formatted.append(html.escape(step_text[pos:], quote=False))
    return "".join(body), ("".join(formatted) if mentioned else ""), mentioned


def server_time_as_test_clock(monkeypatch: Any, clock: Any) -> None:
    """Synapse stamps events with the real time; the scenarios run on the test clock (a fixed
    Monday 09:00, moved by `advance`), as the Slack and Teams harnesses stamp their payloads.
    So events are read as sent at the test clock's now, shifted by their real age."""
    from datetime import datetime, timezone

    from adapters.matrix import inbound

    real = inbound.sent_at

    def on_test_clock(event: Mapping[str, Any]) -> Any:
        when = real(event)
        return None if when is None else clock.now() + (when - datetime.now(timezone.utc))

    monkeypatch.setattr(inbound, "sent_at", on_test_clock)


class BotRunner:
    """Causette's Matrix adapter (adapters/matrix/runtime.py `MatrixRuntime`) on its own event
    loop thread, logged in as the world's bot account, with `store` as its encryption store.
    `seen` holds every reply the sender rendered: (Outbound, content)."""

    def __init__(self, bot: Bot, world: World, store: Path, *, device: tuple[str, str] | None = None,
                 allowed_servers: str = "", encryption: bool = True, loop: Any = None) -> None:
        assert world.bot is not None
        token, device_id = device or (world.bot.access_token, world.bot.device_id)
        self.bot = bot
        self.world = world
        self.settings = bot.services.settings.model_copy(update={
            "matrix_homeserver": world.hs.url, "matrix_user_id": world.bot.user_id,
            "matrix_access_token": token, "matrix_device_id": device_id,
            "matrix_store_path": str(store), "matrix_encryption": encryption,
            "matrix_allowed_servers": allowed_servers})
        self.seen: list[tuple[Outbound, Mapping[str, Any]]] = []
        self._lock = threading.Lock()
        # matrix-nio's encryption stores (peewee) bind their models to a database for each
        # query: two clients with stores in two threads of one process race on that binding
        # ("Query must be bound to a database"). So the bot shares the people's loop thread when
        # given (one process holds both here; a deployed bot is alone in its process).
        self.shared_loop = loop
        self.loop: Any = None
        self.runtime: Any = None

    def _observe(self, outbound: Outbound, content: Mapping[str, Any]) -> None:
        with self._lock:
            self.seen.append((outbound, dict(content)))

    def start(self, timeout: float = 60.0) -> "BotRunner":
        from adapters.matrix.runtime import MatrixRuntime
        from tests.matrix.world import LoopThread

        self.loop = self.shared_loop or LoopThread("matrix-bot")
        self.runtime = MatrixRuntime(self.bot, self.settings, observer=self._observe, sync_timeout_ms=2000)
        self.loop.run(self.runtime.start(), timeout)
        return self

    def stop(self) -> None:
        if self.loop is None:
            return
        try:
            self.loop.run(self.runtime.stop(), 60)
        finally:
            if self.loop is not self.shared_loop:
                self.loop.stop()
            self.loop = None
            if self.bot.services.deliver == self.runtime.deliver:
                self.bot.services.deliver = None

    def wait_for(self, event_id: str, timeout: float = HANDLED_TIMEOUT) -> None:
        assert self.loop is not None
        if not self.loop.run(self.runtime.wait_for(event_id, timeout), timeout + 5):
            raise AssertionError(f"the bot did not handle {event_id} within {timeout} s")

    def settle(self, timeout: float = HANDLED_TIMEOUT) -> None:
        assert self.loop is not None
        if not self.loop.run(self.runtime.settle(timeout), timeout + 5):
            raise AssertionError(f"the bot did not settle within {timeout} s")

    def deliver(self, effects: list[Effect]) -> None:
        if effects:
            self.runtime.deliver(effects)

    def take(self) -> list[tuple[Outbound, Mapping[str, Any]]]:
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


@dataclass
class Exchange:
    """A guided form in progress in a person's direct chat: the form (as the reply that opened
    it carried it), the room of its questions, and the field the last question asked."""

    form: Form
    room: str
    index: int = 0


def answer_text(f: FormField, values: Mapping[str, str]) -> str:
    """What a person types to answer the question of `f`, to give it `values[f.name]` (as the
    question shows the choices: see adapters/matrix/forms.py `question`)."""
    from adapters.matrix.forms import KEEP, SKIP, by_value

    if f.name not in values:
        if f.value:
            return KEEP
        assert not f.required, f"the step gives no value for the required field {f.name!r}"
        return SKIP
    value = values[f.name]
    if f.kind == "select":
        chosen = [n for n, (v, _label) in enumerate(f.options, 1) if v == value]
        assert chosen, f"{value!r} is not a choice of {f.name!r}: {f.options}"
        return f.options[chosen[0] - 1][1].strip() if by_value(f) else str(chosen[0])
    if f.kind == "checkbox":
        return "yes" if value.lower() in ("1", "true", "yes", "on") else "no"
    return value if value.strip() or f.required else SKIP


class MatrixHarness:
    """Scenario steps through real Matrix clients and Causette's Matrix adapter (see the module
    docstring). `store` is the bot's encryption store (a directory of the test)."""

    platform = "matrix"

    def __init__(self, bot: Bot, world: World, humans: Humans, store: Path) -> None:
        self.bot = bot
        self.world = world
        self.humans = humans
        self.tenant = world.hs.server_name
        seed_demo(bot, tenant=self.tenant, platform="matrix", user_id=world.user_id, channel_id=world.channel_id)
        # A fresh database is a fresh install: a new device with its own store. (With the same
        # device, Synapse would answer the first sync from its 2-minute sync cache, keyed by
        # device, filter and `since`: the previous test's, whose token predates that test's
        # messages, and they would all be answered again: see the report on issue 19.)
        self.device = device = world.bot_device()
        self.runner = BotRunner(bot, world, store, device=(device.access_token, device.device_id),
                                loop=humans.loop).start()
        self.received: list[Received] = []  # every reply the people's clients received, in order
        self.exchanges: dict[str, Exchange] = {}  # handle → the guided form in progress in their direct chat
        self.presses = 0
        self.reacted: set[tuple[str, str, str]] = set()  # (handle, card, keycap) reactions already put

    def close(self) -> None:
        try:
            self.runner.stop()
        finally:
            self.world.sign_out(self.device)  # an uninstalled bot's device is signed out

    # Where a reply goes, and who can see it arrive --------------------------------------------
    def _destination(self, outbound: Outbound, step: Step) -> tuple[str, str] | None:
        """(room id, handle of a person whose client receives it) of an observed reply."""
        to = outbound.to
        if isinstance(to, UserRef):
            handle = self.world.handle_of(to.id)
            room = self.runner.runtime.known_direct_room(to.id) or self.world.dms.get(handle)
            return (room, handle) if room and handle in self.world.dms else None
        if outbound.private_for is not None and to.kind != "dm":
            handle = self.world.handle_of(outbound.private_for.id)
            room = self.runner.runtime.known_direct_room(outbound.private_for.id) or self.world.dms.get(handle)
            return (room, handle) if room and handle in self.world.dms else None
        for handle, room in self.world.dms.items():
            if room == to.id:
                return room, handle
        reader = step.user if step.user in self.world.member_of(to.id) else next(iter(self.world.member_of(to.id)), "")
        return (to.id, reader) if reader else None

    def _check_arrived(self, seen: list[tuple[Outbound, Mapping[str, Any]]], step: Step, started_ms: int) -> list[Received]:
        bot_id = self.world.bot.user_id  # type: ignore[union-attr]
        wanted: dict[tuple[str, str], Counter[str]] = {}
        for outbound, content in seen:
            where = self._destination(outbound, step)
            if where is not None:
                wanted.setdefault(where, Counter())[str(content.get("body", ""))] += 1
        arrived: list[Received] = []
        for (room, handle), bodies in wanted.items():
            human = self.humans[handle]
            taken: set[str] = set()

            def match(r: Received, room: str = room, bodies: Counter[str] = bodies) -> bool:
                if r.room_id != room or r.sender != bot_id or r.ts < started_ms - 1000 or r.event_id in taken:
                    return False
                body = r.body if r.body in bodies else str(r.content.get("m.new_content", {}).get("body", ""))
                return body in bodies

            need = sum(bodies.values())
            got = self.humans.run(human.wait_for(match, count=need, timeout=HANDLED_TIMEOUT), HANDLED_TIMEOUT + 10)
            counts = Counter(r.body if r.body in bodies else str(r.content.get("m.new_content", {}).get("body", ""))
                             for r in got)
            missing = bodies - counts
            assert not missing, f"{step}: {handle}'s client did not receive {missing} in {room}"
            arrived += got
        return arrived

    # Forms: what the bot's replies started --------------------------------------------------
    def _note(self, seen: list[tuple[Outbound, Mapping[str, Any]]], step: Step) -> None:
        """Follow the guided exchanges: a reply carrying a form is followed by its first question
        in the reader's direct chat (a new exchange); a later question asks the next field."""
        opened: Form | None = None
        for outbound, _content in seen:
            if outbound.reply.form is not None:
                opened = outbound.reply.form
            elif outbound.reply.key == "matrix.form_question":
                where = self._destination(outbound, step)
                assert where is not None, f"{step}: a form question went nowhere a client sees"
                room, handle = where
                if opened is not None:
                    self.exchanges[handle] = Exchange(opened, room)
                    opened = None
                elif handle in self.exchanges:
                    self.exchanges[handle].index += 1

    # Steps ----------------------------------------------------------------------------------------
    def room_of(self, step: Step) -> str:
        return self.world.dms[step.user] if step.where == "dm" else self.world.rooms[step.where.lstrip("#")]

    def _send(self, step: Step, room: str, body: str, **kw: Any) -> list[tuple[Outbound, Mapping[str, Any]]]:
        """`step.user` sends in `room`; once the bot has handled it, its replies (checked arrived)."""
        human = self.humans[step.user]
        started_ms = int(time.time() * 1000)
        eid = self.humans.run(human.send(room, body, **kw))
        self.runner.wait_for(eid)
        seen = self.runner.take()
        self.received += self._check_arrived(seen, step, started_ms)
        self._note(seen, step)
        return seen

    def _type(self, step: Step) -> list[tuple[Outbound, Mapping[str, Any]]]:
        text = step.text
        if step.command:
            text = f"{self.runner.settings.matrix_command_prefix} {text}"
        body, formatted, mentioned = content_of(self.world, text)
        return self._send(step, self.room_of(step), body, formatted=formatted,
                          mentions={"user_ids": mentioned} if mentioned else {})

    def _card(self, step: Step) -> tuple[str, str, int]:
        """(room, event id, number) of the most recent card `step.user`'s client received with a
        button whose command starts with `step.press` (read in the card's text, edits applied)."""
        human = self.humans[step.user]
        self.humans.run(human.sync(0))
        bot_id = self.world.bot.user_id  # type: ignore[union-attr]
        button = re.compile(r"^(\d+)\. .* — " + re.escape(self.runner.settings.matrix_command_prefix) + r" (.+)$")
        superseded: set[str] = set()
        for eid in reversed(human.order):
            r = human.received[eid]
            if r.sender != bot_id or r.type != "m.room.message":
                continue
            rel = r.content.get("m.relates_to") or {}
            body, target = r.body, eid
            if rel.get("rel_type") == "m.replace":
                body, target = str((r.content.get("m.new_content") or {}).get("body", "")), str(rel.get("event_id"))
            if target in superseded:
                continue
            superseded.add(target)
            for line in body.split("\n"):
                m = button.match(line.strip())
                if m and m.group(2).startswith(step.press):
                    return r.room_id, target, int(m.group(1))
        raise AssertionError(f"no button {step.press!r} was shown to {step.user} on Matrix")

    def _press(self, step: Step) -> list[tuple[Outbound, Mapping[str, Any]]]:
        room, card, number = self._card(step)
        self.presses += 1
        key = KEYCAPS[number - 1]
        # In turn: a keycap reaction, then a reply with the number (Element's replies carry no quoted
        # fallback and mention the card's sender). A keycap the person already put on that card
        # cannot be put again (Synapse refuses a duplicate annotation; Element's click would remove
        # it): they reply with the number. In the surveys scenario such a reply is the second press
        # of a questionnaire already open: a press, not the answer to its first question.
        if self.presses % 2 == 0 or (step.user, card, key) in self.reacted:
            bot_id = self.world.bot.user_id  # type: ignore[union-attr]
            return self._send(step, room, str(number), extra={"m.relates_to": {"m.in_reply_to": {"event_id": card}}},
                              mentions={"user_ids": [bot_id]})
        self.reacted.add((step.user, card, key))
        return self._send(step, room, "", event_type="m.reaction",
                          content={"m.relates_to": {"rel_type": "m.annotation", "event_id": card, "key": key}})

    def _submit(self, step: Step) -> list[tuple[Outbound, Mapping[str, Any]]]:
        exchange = self.exchanges.get(step.user)
        if exchange is None:
            return []  # no guided exchange in progress (see the module docstring)
        values = dict(step.submit or {})
        fields = exchange.form.fields
        unknown = set(values) - {f.name for f in fields}
        assert not unknown, f"{step}: the form {exchange.form.title!r} has no field {unknown}"
        while True:
            f = fields[exchange.index]
            text = answer_text(f, values)
            last = exchange.index == len(fields) - 1
            if last:
                del self.exchanges[step.user]  # this answer sends the form
            seen = self._send(step, exchange.room, text)
            refused = [(o.reply.key, str(c.get("body", ""))) for o, c in seen if o.reply.key.startswith("matrix.form_")
                       and o.reply.key != "matrix.form_question"]
            assert not refused, f"{step}: the answer {text!r} to {f.label!r} was refused: {refused}"
            if last:
                return seen
            asked = [c for o, c in seen if o.reply.key == "matrix.form_question"]
            assert len(asked) == len(seen) == 1 and self.exchanges.get(step.user) is exchange, \
                f"{step}: after {text!r} to {f.label!r}, expected the next question, got {[o.reply.key for o, _ in seen]}"
            label = fields[exchange.index].label.strip()[:40]
            assert label in str(asked[0].get("body", "")), f"{step}: the next question is not {label!r}: {asked[0]}"

    def run_step(self, step: Step) -> list[Seen]:
        self.runner.take()
        if step.advance:  # the jobs' effects go through the adapter's sender (deliver returns once sent)
            started_ms = int(time.time() * 1000)
            advance(self.bot, step.advance, self.runner.deliver)
            delivered = self.runner.take()
            self.received += self._check_arrived(delivered, step, started_ms)
            self._note(delivered, step)
        seen: list[tuple[Outbound, Mapping[str, Any]]] = []
        if step.text or not (step.press or step.submit is not None):
            seen += self._type(step)
        if step.press:
            seen += self._press(step)
        if step.submit is not None:
            seen += self._submit(step)
        return [Seen(outbound.reply.key, str(content.get("body", ""))) for outbound, content in seen]
