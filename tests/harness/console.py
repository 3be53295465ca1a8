"""The console harness: drives ConsoleMessenger line by line; what a step saw is what the
console printed for each reply (its label, text, card, form and attachment lines).

Buttons and forms as a console user works them: `/click N` on the card just printed (or,
for an older card, the command it printed beside the button), `/form a=1 | b=2` for the last
form printed (tests/scenarios `Step.press` / `Step.submit`)."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

from adapters.console.messenger import ConsoleMessenger
from adapters.console.seed import demo_history, seed_demo
from bot.core import Bot
from bot.types import Action, Effect, Form, Outbound
from store.demo import DEMO_TENANT
from adapters.console.render import recipient_of
from tests.scenarios import Seen, Step


class PrintedConsole(ConsoleMessenger):
    """The real messenger, delivering one effect at a time so each reply's printed lines are
    known; the recorded text is read back from the output, not rebuilt from the reply."""

    def __init__(self, bot: Bot) -> None:
        self.buffer = io.StringIO()
        super().__init__(bot, DEMO_TENANT, "sophie", out=self.buffer, history=demo_history,
                         files_dir=Path(tempfile.mkdtemp(prefix="causette-files-")))  # pictures, not in the checkout
        self.seen: list[Seen] = []
        self.shown: list[tuple[str | None, Outbound]] = []  # (who alone reads it, or None: a channel), in order

    def deliver(self, effects: list[Effect]) -> None:
        for effect in effects:
            start = self.buffer.tell()
            super().deliver([effect])
            if isinstance(effect, Outbound):
                self.seen.append(Seen(effect.reply.key, _without_label(self.buffer.getvalue()[start:])))
                self.shown.append((reader(effect), effect))


def reader(effect: Outbound) -> str | None:
    """Who alone reads `effect` (a DM or a private reply), None for a channel post."""
    if effect.private_for is not None:
        return effect.private_for.id
    kind, ident = recipient_of(effect)
    return ident if kind == "@" else None


def _without_label(printed: str) -> str:
    """What the console printed for one reply, less the `[#channel, only @x sees this]` label
    in front of `Causette:` (it names the reader, which `absent=` checks must not count)."""
    label, sep, rest = printed.partition(" Causette: ")
    return rest if sep and "\n" not in label else printed


class ConsoleHarness:
    platform = "console"

    def __init__(self, bot: Bot) -> None:
        seed_demo(bot)
        self.console = PrintedConsole(bot)

    def output(self) -> str:
        return self.console.buffer.getvalue()

    def run_step(self, step: Step) -> list[Seen]:
        c = self.console
        if step.advance:
            c.handle_line(f"/clock {step.advance}")
        c.seen = []
        c.handle_line(f"/as {step.user}")
        c.handle_line("/dm" if step.where == "dm" else f"/in {step.where}")
        if step.text:
            c.handle_line(self._typed(step, step.text))
        if step.press:
            self._press(step)
        if step.submit is not None:
            self._submit(step)
        return list(c.seen)

    def _typed(self, step: Step, text: str) -> str:
        return f"{self.console.command} {text}" if step.command and step.where != "dm" else text

    def _visible(self, user: str) -> list[Outbound]:
        return [o for who, o in self.console.shown if who in (None, user)]

    def _press(self, step: Step) -> None:
        c = self.console
        action: Action | None = None
        for outbound in reversed(self._visible(step.user)):
            card = outbound.reply.card
            action = next((a for a in card.actions if a.command.startswith(step.press)), None) if card else None
            if action is not None:
                break
        assert action is not None, f"no button {step.press!r} was shown to {step.user}"
        if action in c.state.last_actions:  # the card just printed: its button's number
            c.handle_line(f"/click {c.state.last_actions.index(action) + 1}")
        else:  # an older card: the command it printed beside the button
            c.handle_line(f"{c.command} {action.command}" if step.where != "dm" else action.command)

    def _submit(self, step: Step) -> None:
        c = self.console
        form: Form | None = next((o.reply.form for o in reversed(self._visible(step.user)) if o.reply.form), None)
        assert form is not None, f"no form was shown to {step.user}"
        assert c.state.last_form is form, f"the console's last form is not {step.user}'s: /form would send another"
        names = {f.name for f in form.fields}
        assert step.submit is not None and set(step.submit) <= names, f"unknown fields {set(step.submit or {}) - names}"
        for value in step.submit.values():
            assert "|" not in value and "\n" not in value, f"the console's /form line cannot carry {value!r}"
        c.handle_line("/form " + " | ".join(f"{k}={v}" for k, v in step.submit.items()))
