"""The console at a real terminal (a pseudo-terminal): readline line editing and history,
Ctrl-C and Ctrl-D leave with status 0 and no traceback, escape sequences never become
messages, `/clock` shows its progress; and the console's own lines are in the keyboard's
language whoever speaks."""
from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from sqlalchemy import select as sql_select

from adapters.console.messenger import ConsoleMessenger
from adapters.console.seed import seed_demo
from adapters.console.terminal import strip_controls
from bot.core import Bot
from store.db import ALL_TENANTS, Database
from store.demo import DEMO_TENANT
from store.models.inbox import InboxEvent

ROOT = Path(__file__).resolve().parent.parent
CLOCK = "2026-11-23T09:00:00+00:00"
PROMPT = "sophie@#general> "
UP = "\x1b[A"


def _own_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pseudo-terminal on
    its stdin, so Ctrl-C there interrupts it as it would at a real terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`python app.py console --demo` on a pseudo-terminal, typed at like a person would."""

    def __init__(self, db_path: Path, *flags: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUSETTE_", "SLACK_", "MICROSOFT_", "DATABASE_URL"))}
        env.update(TERM="xterm", INPUTRC="/dev/null", PYTHONUNBUFFERED="1")
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--database-url", f"sqlite:///{db_path}", "console", "--demo", "--clock", CLOCK, *flags],
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, preexec_fn=_own_terminal)
        os.close(slave)
        self.output = ""

    def read_until(self, pattern: str, timeout: float = 60.0) -> str:
        """Everything read until `pattern` (a regex) shows after what was read so far."""
        start = len(self.output)
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output[start:]):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {pattern!r} in {self.output[start:]!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the console exited and closed the terminal
                    chunk = b""
                assert chunk, f"the console ended before {pattern!r}: {self.output[start:]!r}"
                self.output += chunk.decode("utf-8", "replace")
        return self.output[start:]

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def exit_status(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"the console did not exit: {self.output[-600:]!r}"
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    pass
        os.close(self.master)
        return self.proc.returncode


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    """Start consoles on pseudo-terminals; any still running at the end is killed."""
    started: list[Terminal] = []

    def start(db_path: Path, *flags: str) -> Terminal:
        started.append(Terminal(db_path, *flags))
        return started[-1]

    yield start
    for term in started:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()


def posted_texts(db_path: Path) -> list[str]:
    """The text of every console line that became an event, in order."""
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.session(ALL_TENANTS, readonly=True) as s:
            payloads = s.scalars(sql_select(InboxEvent.payload).order_by(InboxEvent.id)).all()
    finally:
        db.dispose()
    return [json.loads(p)["text"] for p in payloads]


def test_arrow_keys_edit_and_recall_lines_and_ctrl_d_leaves(tmp_path: Path, terminal: Callable[..., Terminal]) -> None:
    db_path = tmp_path / "console.db"
    term = terminal(db_path)
    term.read_until(re.escape(PROMPT))
    term.type(UP + "\r")  # nothing typed before: no history to recall, an empty line
    term.read_until(re.escape(PROMPT))
    term.type("hello frm the terminal" + "\x1b[D" * 14 + "o" + "\r")  # ← moves back into the line
    term.read_until(re.escape(PROMPT))
    term.type(UP + "\r")  # ↑ recalls the last line, Enter sends it again
    term.read_until(re.escape(PROMPT))
    term.type("\x04")  # Ctrl-D on an empty line
    assert term.exit_status() == 0
    assert "Traceback" not in term.output
    assert posted_texts(db_path) == ["hello from the terminal", "hello from the terminal"]


def test_ctrl_c_at_the_prompt_leaves_with_status_zero(tmp_path: Path, terminal: Callable[..., Terminal]) -> None:
    term = terminal(tmp_path / "console.db")
    term.read_until(re.escape(PROMPT))
    term.type("half a li")
    term.read_until("half a li")
    # Python's readline misses a SIGINT that lands between printing the prompt and waiting for
    # keys (it notices it only at the next key): a person never types that fast, a test does.
    time.sleep(0.5)
    term.type("\x03")
    assert term.exit_status() == 0
    assert "Traceback" not in term.output and "KeyboardInterrupt" not in term.output
    assert posted_texts(tmp_path / "console.db") == []


def test_a_month_of_clock_shows_its_progress_then_the_messages_by_recipient(tmp_path: Path, terminal: Callable[..., Terminal]) -> None:
    term = terminal(tmp_path / "console.db")
    term.read_until(re.escape(PROMPT))
    term.type("/clock +30d\r")
    shown = term.read_until(r"it is now 2026-12-23 09:\d\d UTC", timeout=240)  # a month of jobs: slow on a busy machine
    assert re.search(r"\r\x1b\[K\(console\) moving time forward… 2026-1\d-\d\d \d\d:\d\d UTC \(\d+%\)", shown)
    summary = re.search(r"\(console\) \+30d: (\d+) clock ticks, ([\d,]+) job runs, messages: (\d+) \(recipients: (\d+)\)", shown)
    assert summary, shown
    ticks, runs, messages, recipients = (int(n.replace(",", "")) for n in summary.groups())
    assert ticks <= 241 and runs > ticks  # a bounded number of ticks, several jobs at each
    dms = re.findall(r"→ @(\w+) \(DM\)", shown[summary.end():])
    assert messages >= recipients == len(set(dms)) > 0  # one header or line per recipient
    term.type("/quit\r")
    assert term.exit_status() == 0
    assert "Traceback" not in term.output


def test_escape_sequences_and_controls_never_become_messages(bot: Bot) -> None:
    seed_demo(bot)
    out = io.StringIO()
    console = ConsoleMessenger(bot, DEMO_TENANT, "sophie", out=out)
    console.handle_line(UP)  # ↑ without line editing: nothing to post
    console.handle_line("\x1b[200~pasted\x1b[201~ text\x07 with \x1b[31mcolour\x1b[0m\tand a tab")
    assert out.getvalue() == ""
    db = bot.services.db
    with db.session(ALL_TENANTS, readonly=True) as s:
        texts = [json.loads(p)["text"] for p in s.scalars(sql_select(InboxEvent.payload).order_by(InboxEvent.id))]
    assert texts == ["pasted text with colour and a tab"]


def test_strip_controls_keeps_text_and_drops_every_kind_of_sequence() -> None:
    assert strip_controls("naïve café 🤖 «ok»") == "naïve café 🤖 «ok»"
    assert strip_controls("\x1b]0;window title\x07after") == "after"
    assert strip_controls("\x1bOAx\x1b[1;5Cy\x9b2Jz\x1b") == "xyz"
    assert strip_controls("a\x00b\x7fc\x85d") == "abcd"


def test_the_consoles_own_lines_follow_the_keyboard_not_the_speaker(bot: Bot) -> None:
    seed_demo(bot)
    english, french = io.StringIO(), io.StringIO()
    ConsoleMessenger(bot, DEMO_TENANT, "sophie", out=english).handle_line("/as julien")
    ConsoleMessenger(bot, DEMO_TENANT, "james", out=french, lang="fr").handle_line("/as julien")
    assert english.getvalue() == "(console) you are now @julien\n"  # julien and sophie speak French
    assert french.getvalue() == "(console) vous êtes maintenant @julien\n"  # james speaks English
