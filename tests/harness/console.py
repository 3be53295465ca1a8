"""The console harness: drives ConsoleMessenger line by line and records every effect."""
from __future__ import annotations

import io
import re
from datetime import timedelta

from adapters.console.messenger import ConsoleMessenger
from adapters.console.seed import demo_history, seed_demo
from bot.core import Bot
from bot.text import strip_markers
from bot.types import Effect, Outbound
from store.demo import DEMO_TENANT
from tests.scenarios import Seen, Step


class RecordingConsole(ConsoleMessenger):
    def __init__(self, bot: Bot) -> None:
        super().__init__(bot, DEMO_TENANT, "sophie", out=io.StringIO(), history=demo_history)
        self.seen: list[Seen] = []

    def deliver(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Outbound):
                reply = effect.reply
                parts = [reply.text]
                if reply.card is not None:
                    card = reply.card
                    parts += [card.title, card.body, card.footer]
                    parts += [f"{k}: {v}" for k, v in card.fields]
                    parts += [f"{h}\n{b}" for h, b in card.sections]
                    parts += [a.label + " " + a.command for a in card.actions]
                self.seen.append(Seen(reply.key, strip_markers("\n".join(p for p in parts if p))))
        super().deliver(effects)


class ConsoleHarness:
    def __init__(self, bot: Bot) -> None:
        seed_demo(bot)
        self.console = RecordingConsole(bot)

    def output(self) -> str:
        return self.console.out.getvalue()  # type: ignore[attr-defined]

    def run_step(self, step: Step) -> list[Seen]:
        c = self.console
        if step.advance:
            c.handle_line(f"/clock {step.advance}")
        c.seen = []
        c.handle_line(f"/as {step.user}")
        c.handle_line("/dm" if step.where == "dm" else f"/in {step.where}")
        line = f"{c.command} {step.text}" if step.command and step.where != "dm" else step.text
        c.handle_line(line)
        return list(c.seen)
