"""The console harness: drives ConsoleMessenger line by line; what a step saw is what the
console printed for each reply (its label, text, card, form and attachment lines)."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

from adapters.console.messenger import ConsoleMessenger
from adapters.console.seed import demo_history, seed_demo
from bot.core import Bot
from bot.types import Effect, Outbound
from store.demo import DEMO_TENANT
from tests.scenarios import Seen, Step


class PrintedConsole(ConsoleMessenger):
    """The real messenger, delivering one effect at a time so each reply's printed lines are
    known; the recorded text is read back from the output, not rebuilt from the reply."""

    def __init__(self, bot: Bot) -> None:
        self.buffer = io.StringIO()
        super().__init__(bot, DEMO_TENANT, "sophie", out=self.buffer, history=demo_history,
                         files_dir=Path(tempfile.mkdtemp(prefix="causette-files-")))  # pictures, not in the checkout
        self.seen: list[Seen] = []

    def deliver(self, effects: list[Effect]) -> None:
        for effect in effects:
            start = self.buffer.tell()
            super().deliver([effect])
            if isinstance(effect, Outbound):
                self.seen.append(Seen(effect.reply.key, _without_label(self.buffer.getvalue()[start:])))


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
        line = f"{c.command} {step.text}" if step.command and step.where != "dm" else step.text
        c.handle_line(line)
        return list(c.seen)
