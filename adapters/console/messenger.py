"""The console messenger: a simulated workspace in a terminal (or a script on stdin).

Lines:
  /as <handle>        speak as someone          /in #<channel>   speak in a channel
  /dm                 talk to the bot privately  /lang fr|en      your language
  /users, /channels   who and where              /clock +2h       move time forward, run jobs
  /click N            press button N of the last card
  /form a=1 | b=2     submit the last form       /quit            leave
  /causette <cmd>     the slash command; in /dm every line is a command; other lines are
                      channel messages (addressed when they @mention the bot).

The console's own lines are in the keyboard's language (`lang`: `console --lang fr`, else the
settings' default language), whoever is speaking; the bot answers each person in theirs. At a
terminal, lines are edited with readline (arrows, history); Ctrl-C and Ctrl-D leave. Escape
sequences and control characters typed or pasted are dropped before a line becomes an event.

A reply's picture (a chart) is saved as a PNG under `files_dir` (default `./causette-files`,
created on first use) and the console prints the file's full path and the picture's alt text.

Every line the bot is to see goes through the durable inbox like a Slack or Teams delivery:
written first, then processed by a transaction that also marks it done. A line left
unanswered by a console that was killed is answered when the next one starts.
"""
from __future__ import annotations

import itertools
import json
import logging
import re
import sys
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.console.render import group_by_recipient, plain, recipient_label, recipient_of, render_card, render_form, target_label
from adapters.console.terminal import strip_controls
from bot.core import Bot
from bot.inbox import InboxWorker
from bot.text import mention_marker
from bot.ticker import Advanced, advance_clock
from bot.types import (Action, ConversationRef, Effect, FetchHistory, Form, IncomingMessage, MembersChanged, Outbound, Picture,
                       SpaceChange, UserRef)
from store import inbox as inbox_store
from store.inbox import Claimed
from store.models.core import Conversation, Person

PLATFORM = "console"
BOT_HANDLE = "causette"
_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+)")
_BOT_MENTION = re.compile(rf"(?<![\w@])@{BOT_HANDLE}\b", re.IGNORECASE)
_DURATION = re.compile(r"^\+?(\d+)\s*(m|min|h|d|j|w)$")
TICK_SECONDS = 30.0  # an interactive console's ticker: wall-clock seconds between two ticks
FILES_DIR = Path("causette-files")  # where pictures are saved (relative to the working directory)


@dataclass
class ConsoleState:
    tenant: str
    user: str
    channel: str = "general"
    dm: bool = False
    last_actions: list[Action] = field(default_factory=list)
    last_form: Form | None = None


class ConsoleMessenger:
    """The console as a messenger (adapters/base.py `Messenger`): `deliver` prints effects,
    `start`/`stop` run its ticker."""

    platform = PLATFORM

    def __init__(self, bot: Bot, tenant: str, user: str, out: TextIO = sys.stdout,
                 history: Callable[[FetchHistory], list[IncomingMessage]] | None = None,
                 lang: str | None = None, files_dir: Path | None = None) -> None:
        self.bot = bot
        self.files_dir = files_dir if files_dir is not None else FILES_DIR
        self.lang = lang or bot.services.settings.default_locale
        self._proactive = False  # printing the jobs' messages: other people's DMs in one line
        self._headed = False  # printing a group of messages under its recipient's header
        self.state = ConsoleState(tenant=tenant, user=user)
        self.out = out
        self._ids = itertools.count(1)
        self._anchors: dict[str, int] = {}
        self._history = history
        self.command = bot.services.settings.command_name
        self._run_id = uuid.uuid4().hex[:12]
        self.inbox = InboxWorker(bot.services.db, bot.services.clock, {PLATFORM: self._process}, threads=0,
                                 name=f"console:{self._run_id}")
        self._turn = threading.Lock()  # one of a typed line and a tick at a time
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._editing: Any = None  # readline, at a terminal: the line being typed is drawn again after a tick

    def _t(self, key: str, **params: object) -> str:
        """Console chrome in the keyboard's language, whoever is speaking."""
        return self.bot.services.prompts.t(self.lang, key, **params)

    # Directory -------------------------------------------------------------
    def _people(self) -> dict[str, Person]:
        with self.bot.services.db.session(self.state.tenant) as s:
            return {p.external_id: p for p in s.scalars(select(Person))}

    def _channels(self) -> dict[str, Conversation]:
        with self.bot.services.db.session(self.state.tenant) as s:
            return {c.external_id: c for c in s.scalars(select(Conversation).where(Conversation.kind != "dm"))}

    def user_ref(self, handle: str) -> UserRef:
        person = self._people().get(handle)
        return UserRef(PLATFORM, self.state.tenant, handle, person.display_name if person else handle)

    def conversation_ref(self) -> ConversationRef:
        if self.state.dm:
            return ConversationRef(PLATFORM, self.state.tenant, f"dm-{self.state.user}", "dm", name=f"dm-{self.state.user}")
        chan = self._channels().get(self.state.channel)
        kind = chan.kind if chan else "public"
        return ConversationRef(PLATFORM, self.state.tenant, self.state.channel, kind, name=self.state.channel)  # type: ignore[arg-type]

    # Input -----------------------------------------------------------------
    def prompt(self) -> str:
        where = "DM" if self.state.dm else "#" + self.state.channel
        return f"{self.state.user}@{where}> "

    def handle_line(self, line: str) -> None:
        line = strip_controls(line.rstrip("\n"))
        if not line.strip():
            return
        stripped = line.strip()
        if stripped == self.command or stripped.startswith(self.command + " "):
            self._send(stripped[len(self.command):].strip(), addressed=True, via="command")
        elif stripped.startswith("/"):
            self._console_command(stripped)
        else:
            text, at = without_bot_mention(stripped)
            if self.state.dm:
                self._send(text, addressed=True, via="message", bot_at=at)
            else:
                self._send(text, addressed=at is not None, via="message" if at is None else "mention", bot_at=at)

    def _console_command(self, line: str) -> None:
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if verb == "/as":
            handle = rest.lstrip("@").lower()
            if not re.fullmatch(r"[\w.\-]{1,60}", handle):
                self._print(self._t("console.usage_as"))
                return
            if handle not in self._people():
                self._print(self._t("console.new_person", handle=handle))
            self.state.user = handle
            self._print(self._t("console.you_are", handle=handle))
        elif verb == "/in":
            name = rest.lstrip("#").lower()
            if not re.fullmatch(r"[\w\-]{1,80}", name):
                self._print(self._t("console.usage_in"))
                return
            if name not in self._channels():
                self._print(self._t("console.new_channel", channel=name))
            self.state.channel, self.state.dm = name, False
            self._print(self._t("console.you_are_in", channel=name))
        elif verb == "/dm":
            self.state.dm = True
            self._print(self._t("console.you_are_dm"))
        elif verb == "/lang":
            self._send(f"lang {rest}", addressed=True, via="command")
        elif verb == "/users":
            for p in sorted(self._people().values(), key=lambda p: p.external_id):
                if not p.is_bot:
                    self._print(f"@{p.external_id:12} {p.display_name} — {p.title}, {p.department}, {p.site}")
        elif verb == "/channels":
            for c in sorted(self._channels().values(), key=lambda c: c.external_id):
                self._print(f"#{c.external_id:12} {c.kind}")
        elif verb == "/clock":
            self._advance(rest)
        elif verb == "/click":
            self._click(rest)
        elif verb == "/form":
            self._submit_form(rest)
        elif verb in ("/help", "/?"):
            self._print(self._t("console.help", command=self.command))
        else:
            self._print(self._t("console.unknown", verb=verb, command=self.command))

    def _advance(self, rest: str) -> None:
        m = _DURATION.match(rest.replace(" ", ""))
        clock = self.bot.services.clock
        if not m or not hasattr(clock, "advance"):
            self._print(self._t("console.usage_clock"))
            return
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "min": timedelta(minutes=n), "h": timedelta(hours=n),
                 "d": timedelta(days=n), "j": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        shown: list[Effect] = []
        live = self.out.isatty()

        def progress(now: datetime, fraction: float) -> None:
            line = self._t("console.clock_progress", when=f"{now:%Y-%m-%d %H:%M}", percent=round(fraction * 100))
            print(f"\r\x1b[K{line}", end="", file=self.out, flush=True)

        try:
            done = advance_clock(self.bot, delta, shown.extend, progress if live else None)
        except KeyboardInterrupt:  # leaving: still show what the jobs sent until then
            self._erase_progress(live)
            self.show_proactive(shown)
            raise
        self._erase_progress(live)
        self._print(self._clock_summary(f"{n}{unit}", done, shown))
        self.show_proactive(shown)
        self._print(self._t("console.now", when=f"{clock.now():%Y-%m-%d %H:%M}"))

    def _erase_progress(self, live: bool) -> None:
        if live:
            print("\r\x1b[K", end="", file=self.out, flush=True)

    def _clock_summary(self, delta: str, done: Advanced, effects: list[Effect]) -> str:
        groups = group_by_recipient(effects)
        return self._t("console.clock_done", delta=delta, ticks=done.ticks, runs=done.job_runs,
                       messages=sum(len(group) for _key, group in groups), recipients=len(groups))

    def _click(self, rest: str) -> None:
        try:
            action = self.state.last_actions[int(rest) - 1]
        except (ValueError, IndexError):
            self._print(self._t("console.no_button"))
            return
        self._send(action.command, addressed=True, via="button")

    def _submit_form(self, rest: str) -> None:
        form = self.state.last_form
        if form is None:
            self._print(self._t("console.no_form"))
            return
        values = {f.name: f.value for f in form.fields}
        for part in rest.split("|"):
            name, sep, value = part.partition("=")
            if sep:
                values[name.strip()] = value.strip()
        self._send(form.submit_command, addressed=True, via="form", form_values=values)

    def _send(self, text: str, *, addressed: bool, via: str, form_values: dict[str, str] | None = None,
              bot_at: int | None = None) -> None:
        people = self._people()
        mentions: list[UserRef] = []

        def to_marker(m: re.Match[str]) -> str:
            handle = m.group(1).lower()
            if handle in people:
                mentions.append(UserRef(PLATFORM, self.state.tenant, handle, people[handle].display_name))
                return mention_marker(handle)
            return m.group(0)

        if bot_at is None:
            text = _MENTION.sub(to_marker, text)
        else:  # handles before and after the bot's mention become markers: where it stood moves
            before = _MENTION.sub(to_marker, text[:bot_at])
            text, bot_at = before + _MENTION.sub(to_marker, text[bot_at:]), len(before)
        msg_id = f"{self.bot.services.clock.now().timestamp():.6f}-{next(self._ids)}"
        conv = self.conversation_ref()
        msg = IncomingMessage(
            id=msg_id, text=text, sender=self.user_ref(self.state.user), conversation=conv, addressed=addressed,
            mentions=tuple(mentions), sent_at=self.bot.services.clock.now(),
            permalink=f"console://{conv.id}/{msg_id}", via=via,  # type: ignore[arg-type]
            form_values=form_values, bot_mention_at=bot_at,
        )
        inbox_store.put(self.bot.services.db, PLATFORM, f"{self._run_id}:{msg_id}", "message", message_json(msg),
                        self.bot.services.clock.now(), tenant=conv.tenant, order_key=conv.id)
        self.inbox.drain(120)

    def _process(self, row: Claimed, finish: Callable[[Session], None]) -> None:
        """The inbox's processor for console lines: the bot's answer is printed once committed."""
        self.deliver(self.bot.handle(message_from_json(row.payload), in_transaction=finish))

    # Output ----------------------------------------------------------------
    def show_proactive(self, effects: list[Effect]) -> None:
        """Messages the bot sent on its own (jobs), grouped by recipient (a header over a group of
        several): the person speaking's and the channels' first and in full, then each DM to
        someone else in one line a message (`/as` them to act on theirs), so a month of
        reminders to the whole company stays readable."""
        self.deliver([e for e in effects if not isinstance(e, Outbound)])
        channels = self._channels()

        def channel_name(cid: str) -> str:
            return channels[cid].name if cid in channels else cid

        groups = sorted(group_by_recipient(effects), key=lambda item: self._for_someone_else(item[1][0]))
        self._proactive = True
        try:
            for key, group in groups:
                self._headed = len(group) > 1
                if self._headed:
                    self._print(recipient_label(key, len(group), channel_name, self._t))
                self.deliver(list(group))
        finally:
            self._proactive = self._headed = False

    def _for_someone_else(self, effect: Outbound) -> bool:
        kind, ident = recipient_of(effect)
        return kind == "@" and ident != self.state.user

    def deliver(self, effects: list[Effect]) -> None:
        people = self._people()
        channels = self._channels()

        def user_name(pid: str) -> str:
            return pid if pid in people else pid

        def channel_name(cid: str) -> str:
            return channels[cid].name if cid in channels else cid

        def fmt(text: str) -> str:
            return plain(text, user_name, channel_name)

        for effect in effects:
            if isinstance(effect, FetchHistory):
                backfill = self._history(effect) if self._history else []
                self.deliver([e for m in backfill for e in self.bot.handle(m)])
                continue
            if isinstance(effect, SpaceChange):  # the console's channels are its own: it does it, as a platform would
                self.deliver(self.bot.handle(space_changed(effect)))
                continue
            label = target_label(effect, user_name, channel_name, self._t)
            if self._headed:  # the group's header names the recipient
                label = "  " + label if effect.thread_id or effect.private_for else " "
            if effect.anchor:
                updated = effect.anchor in self._anchors
                self._anchors.setdefault(effect.anchor, len(self._anchors) + 1)
                if updated:
                    label += " " + self._t("console.updated")
            reply = effect.reply
            if self._proactive and self._for_someone_else(effect):
                self._print(f"{label} Causette: {_first_line(fmt(reply.text))}")
                continue
            self._print(f"{label} Causette: {fmt(reply.text)}")
            if reply.card is not None:
                start = 1
                self.state.last_actions = list(reply.card.actions)
                for line in render_card(reply.card, fmt, self.command, start):
                    self._print(line)
            if reply.form is not None:
                self.state.last_form = reply.form
                for line in render_form(reply.form, fmt, self._t("console.form")):
                    self._print(line)
            if reply.attachment is not None:
                name, content = reply.attachment
                self._print("📎 " + self._t("console.attachment", name=name, size=len(content)))
                self._print(content.decode("utf-8", "replace")[:2000])
            if reply.picture is not None:
                path = self.save_picture(reply.picture)
                self._print(self._t("charts.saved", path=str(path)))
                self._print("   " + self._t("charts.alt_label", alt=reply.picture.alt))

    def save_picture(self, picture: Picture) -> Path:
        """Write the PNG under `files_dir` and return its absolute path. A different picture of
        the same name gets a numbered name (`…-2.png`) instead of replacing it."""
        folder = self.files_dir.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        name = Path(picture.filename).name or "picture.png"  # never a path from elsewhere
        stem, suffix = Path(name).stem, Path(name).suffix or ".png"
        path = folder / (stem + suffix)
        n = 1
        while path.exists() and path.read_bytes() != picture.png:
            n += 1
            path = folder / f"{stem}-{n}{suffix}"
        path.write_bytes(picture.png)
        return path

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # Ticker ----------------------------------------------------------------
    def start(self, tick_seconds: float = TICK_SECONDS) -> None:
        """Tick in the background, as a server does: every `tick_seconds` of wall time
        `Bot.tick` runs the jobs that are due, and their messages are printed above the line
        being typed (which is drawn again after them). Lines and ticks take turns."""
        if self._ticker is not None:
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._ticks, args=(tick_seconds,), name="console-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        """Stop the ticker; a tick under way finishes first."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def _ticks(self, tick_seconds: float) -> None:
        while not self._stop.wait(tick_seconds):
            with self._turn:
                try:
                    effects = self.bot.tick(self.bot.services.clock.now())
                    if effects and not self._stop.is_set():
                        print("\r\x1b[K", end="", file=self.out)  # off the line being typed
                        self.show_proactive(effects)
                        typed = self._editing.get_line_buffer() if self._editing is not None else ""
                        print(self.prompt() + typed, end="", file=self.out, flush=True)
                except Exception:  # noqa: BLE001 - the next tick goes on
                    logging.getLogger(__name__).exception("console tick failed")

    # Loop ------------------------------------------------------------------
    def run(self, stream: TextIO = sys.stdin, tick_seconds: float = TICK_SECONDS) -> int:
        """Read lines until the end, /quit, Ctrl-D or Ctrl-C (exit status 0 for all of them).

        Interactive (a terminal): lines are edited with readline (arrows, in-session history),
        and the ticker runs (`start`) while they are typed. Scripted (stdin not a tty): each
        line is echoed after the prompt, and only `/clock` ticks, so the output of a script does
        not depend on how long it takes."""
        interactive = stream.isatty()
        self._editing = _line_editing() if interactive else None
        try:
            if interactive:
                self._print(self._t("console.welcome", command=self.command))
            self.inbox.drain(120)  # lines a killed console left unanswered
            if interactive:
                self.start(tick_seconds)
            while True:
                try:
                    line = input(self.prompt()) if interactive else stream.readline()
                except EOFError:
                    if interactive:
                        self._print("")
                    break
                if not interactive and line == "":
                    break
                if strip_controls(line).strip() in ("/quit", "/exit"):
                    break
                with self._turn:
                    if not interactive and line.strip():
                        self._print(f"{self.prompt()}{strip_controls(line).rstrip()}")
                    self.handle_line(line)
        except KeyboardInterrupt:  # Ctrl-C: leave, like Ctrl-D; an unfinished line stays in the inbox
            self._print("")
        finally:
            self.stop()
        return 0


def _line_editing() -> Any:
    """The readline module, imported for its side effect on `input()` (line editing, history
    with the arrows), or None where Python was built without it."""
    try:
        import readline
    except ImportError:
        return None
    return readline


def space_changed(effect: SpaceChange) -> MembersChanged:
    """What a platform reports once it made the change: the people joined the channel (a new
    one is named after its name, as the demo's channels are)."""
    channel = effect.channel
    if effect.action == "create" and not channel.id:
        channel = ConversationRef(channel.platform, channel.tenant, channel.name, channel.kind, name=channel.name)
    return MembersChanged(conversation=channel, joined=effect.people)


def _first_line(text: str, limit: int = 100) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def without_bot_mention(line: str) -> tuple[str, int | None]:
    """The line without `@causette` wherever it is, and where the first one stood (None: nowhere)."""
    found = _BOT_MENTION.search(line)
    if found is None:
        return line, None
    before = line[: found.start()].rstrip()
    after = _BOT_MENTION.sub("", line[found.end():]).strip()
    after = re.sub(r"\s{2,}", " ", after)
    return (f"{before} {after}" if before and after else before + after), len(before)


def message_json(msg: IncomingMessage) -> str:
    """A console line's message as the inbox keeps it."""
    data: dict[str, Any] = asdict(msg)
    data["sent_at"] = msg.sent_at.isoformat() if msg.sent_at else None
    data["form_values"] = dict(msg.form_values) if msg.form_values is not None else None
    return json.dumps(data, ensure_ascii=False)


def message_from_json(payload: str) -> IncomingMessage:
    data = json.loads(payload)
    data["sender"] = UserRef(**data["sender"])
    data["conversation"] = ConversationRef(**data["conversation"])
    data["mentions"] = tuple(UserRef(**m) for m in data.get("mentions") or ())
    data["hashtags"] = tuple(data.get("hashtags") or ())
    data["channels"] = tuple(data.get("channels") or ())
    data["sent_at"] = datetime.fromisoformat(data["sent_at"]) if data.get("sent_at") else None
    return IncomingMessage(**data)
