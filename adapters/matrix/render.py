"""Neutral replies → Matrix `m.room.message` contents. Pure: no SDK, no I/O.

- Every reply is an `m.notice` (bots' messages, which other bots do not answer) with a plain
  `body` and an HTML `formatted_body` (`format: org.matrix.custom.html`). Every character of
  text and parameters is literal: HTML-escaped in `formatted_body` (no tag, no link, no pill
  can come from user text) and left as typed in `body`. Only markers become markup
  (bot/text.py): a live ping (`ping_marker`) becomes a pill `<a href="https://matrix.to/#/@u:s">Name</a>`
  AND is listed in `m.mentions.user_ids`; people and rooms named in user text show as
  `@Name` / `#name`; code spans (from prompt templates) become `<code>`.
- `m.mentions` is always sent (empty when nothing pings), so that neither `@room` nor a
  display name typed by someone and echoed by the bot can notify anybody (clients then ignore
  the old body-based push rules); `@room` in literal text also gets a word joiner.
- A card is one formatted message: title, body, fields, sections, its actions as a numbered
  list of the commands they run (`1. Vote — !causette idea vote 12`), and a hint: reply with
  the number or react with 1️⃣… (the runtime remembers the actions of the posted card).
- A picture is uploaded by the sender and posted as an `m.image` (its alt text as body); an
  attachment as an `m.file`; a form starts a guided exchange in a direct chat
  (adapters/matrix/forms.py), the message itself says so.
- No floats anywhere (Matrix's canonical JSON refuses them); an event stays under MAX_BYTES,
  long text being shortened with a localized note.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from bot.text import NO_NAMES, Names, shorten_marked, split_markers
from bot.types import Card, Reply

__all__ = ["NO_NAMES", "Names", "Rendered", "render", "render_text", "plain_of", "KEYCAPS", "number_of"]

Translate = Callable[..., str]
MAX_BYTES = 48_000       # an event is at most 65,536 bytes once signed and wrapped: keep the content well under
MAX_ACTIONS = 10         # numbered (and reactable) actions of a card
KEYCAPS = ("1\ufe0f\u20e3", "2\ufe0f\u20e3", "3\ufe0f\u20e3", "4\ufe0f\u20e3", "5\ufe0f\u20e3", "6\ufe0f\u20e3",
           "7\ufe0f\u20e3", "8\ufe0f\u20e3", "9\ufe0f\u20e3", "\U0001f51f")
_LIMITS = (None, 8000, 3000, 1000, 300)
_WORD_JOINER = "\u2060"


@dataclass(frozen=True)
class Rendered:
    """What to post for one reply: the message content, and what the sender does beside it."""

    content: dict[str, Any]
    actions: tuple[str, ...] = ()                  # the card's commands, numbered from 1
    picture: Any = None                            # bot.types.Picture to upload and post after the text
    attachment: tuple[str, bytes] | None = None    # (filename, content) to upload as an m.file
    form: Any = None                               # bot.types.Form: a guided exchange to start


def pill(user_id: str, name: str) -> str:
    return f'<a href="https://matrix.to/#/{html.escape(user_id, quote=True)}">{html.escape(name, quote=False)}</a>'


def room_link(room_id: str, name: str) -> str:
    return f'<a href="https://matrix.to/#/{html.escape(room_id, quote=True)}">#{html.escape(name, quote=False)}</a>'


def _literal(text: str) -> str:
    """User or parameter text for `body`: as typed, but `@room` cannot notify the room."""
    return text.replace("@room", "@" + _WORD_JOINER + "room")


def _html(text: str) -> str:
    return html.escape(_literal(text), quote=False).replace("\n", "<br>")


def render_text(text: str, names: Names, pings: list[str] | None = None, commands: tuple[str, str] = ("", "")) -> tuple[str, str]:
    """(plain body, formatted HTML) of marked text; the live pings' user ids go to `pings`.
    `commands`: (the core's command name, Matrix's prefix): a code span naming the command
    (`/causette help`, the core's own hints) shows the prefix people type here (`!causette help`)."""
    plain: list[str] = []
    rich: list[str] = []
    for kind, value in split_markers(text):
        if kind == "text":
            plain.append(_literal(value))
            rich.append(_html(value))
        elif kind == "ping":
            name = names.user(value)
            plain.append(_literal(name))
            rich.append(pill(value, _literal(name)))
            if pings is not None and value not in pings:
                pings.append(value)
        elif kind == "user":
            plain.append(_literal("@" + names.user(value)))
            rich.append(_html("@" + names.user(value)))
        elif kind == "code":
            name, prefix = commands
            if name and prefix and (value == name or value.startswith(name + " ")):
                value = prefix + value[len(name):]
            plain.append("`" + _literal(value) + "`")
            rich.append("<code>" + html.escape(_literal(value), quote=False) + "</code>")
        elif kind == "link":
            plain.append(_literal("#" + names.channel(value)))
            rich.append(room_link(value, _literal(names.channel(value))))
        else:
            plain.append(_literal("#" + names.channel(value)))
            rich.append(_html("#" + names.channel(value)))
    return "".join(plain), "".join(rich)


class _Doc:
    """Plain and HTML parts built side by side."""

    def __init__(self, names: Names, limit: int | None, commands: tuple[str, str] = ("", "")) -> None:
        self.names = names
        self.commands = commands
        self.limit = limit
        self.plain: list[str] = []
        self.rich: list[str] = []
        self.pings: list[str] = []

    def text(self, text: str, *, limit: bool = True) -> tuple[str, str]:
        return render_text(shorten_marked(text, self.limit if limit else None), self.names, self.pings, self.commands)

    def block(self, plain: str, rich: str) -> None:
        self.plain.append(plain)
        self.rich.append(rich)


def _card(doc: _Doc, card: Card, t: Translate, prefix: str) -> tuple[str, ...]:
    p, r = doc.text(card.title)
    doc.block(p, f"<strong>{r}</strong>")
    if card.body:
        p, r = doc.text(card.body)
        doc.block(p, f"<p>{r}</p>")
    if card.fields:
        lines_p, lines_r = [], []
        for k, v in card.fields:
            kp, kr = doc.text(k)
            vp, vr = doc.text(v)
            lines_p.append(f"{kp}: {vp}")
            lines_r.append(f"<li><strong>{kr}</strong>: {vr}</li>")
        doc.block("\n".join(lines_p), "<ul>" + "".join(lines_r) + "</ul>")
    for heading, body in card.sections:
        hp, hr = doc.text(heading)
        bp, br = doc.text(body)
        doc.block(f"{hp}\n{bp}" if hp else bp, (f"<p><strong>{hr}</strong><br>{br}</p>" if hp else f"<p>{br}</p>"))
    actions = card.actions[:MAX_ACTIONS]
    if actions:
        lines_p, lines_r = [], []
        for n, action in enumerate(actions, 1):
            lp, lr = doc.text(action.label)
            command = f"{prefix} {action.command}".strip()
            lines_p.append(f"{n}. {lp} — {command}")
            lines_r.append(f"<li>{lr} — <code>{html.escape(command, quote=False)}</code></li>")
        doc.block("\n".join(lines_p), "<ol>" + "".join(lines_r) + "</ol>")
        hp, hr = render_text(t("matrix.actions_hint", last=len(actions)), doc.names)
        doc.block(hp, f"<p><em>{hr}</em></p>")
    if card.footer:
        p, r = doc.text(card.footer)
        doc.block(p, f"<p><em>{r}</em></p>")
    return tuple(a.command for a in actions)


def _build(reply: Reply, names: Names, t: Translate, prefix: str, limit: int | None, truncated: bool,
           command: str = "") -> Rendered:
    doc = _Doc(names, limit, (command, prefix))
    actions: tuple[str, ...] = ()
    if reply.card is not None:
        actions = _card(doc, reply.card, t, prefix)
        if reply.text and reply.text.strip() not in (reply.card.title.strip(), reply.card.body.strip()):
            p, r = doc.text(reply.text)  # the reply's own text leads, as on Slack and Teams
            doc.plain.insert(0, p)
            doc.rich.insert(0, f"<p>{r}</p>")
    else:
        p, r = doc.text(reply.text)
        doc.block(p, r)
    if reply.form is not None:
        fp, fr = render_text(t("matrix.form_started", title=reply.form.title, count=len(reply.form.fields)), names)
        doc.block(fp, f"<p><em>{fr}</em></p>")
    if truncated:
        tp, tr = render_text(t("matrix.truncated"), names)
        doc.block(tp, f"<p><em>{tr}</em></p>")
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": "\n\n".join(p for p in doc.plain if p),
        "format": "org.matrix.custom.html",
        "formatted_body": "".join(doc.rich),
        "m.mentions": {"user_ids": list(doc.pings)} if doc.pings else {},
    }
    return Rendered(content, actions, reply.picture, reply.attachment, reply.form)


def render(reply: Reply, names: Names, t: Translate, prefix: str = "!causette", max_bytes: int = MAX_BYTES,
           command: str = "/causette") -> Rendered:
    """The message of `reply` (shortened, with a note, when its content would pass `max_bytes`).
    `command`: the core's command name, shown as `prefix` in code spans."""
    for n, limit in enumerate(_LIMITS):
        rendered = _build(reply, names, t, prefix, limit, truncated=n > 0, command=command)
        if size_of(rendered.content) <= max_bytes:
            return rendered
    text = Reply(text=shorten_marked(reply.text, 2000), key=reply.key)
    return _build(text, names, t, prefix, 2000, truncated=True, command=command)


def size_of(content: Mapping[str, Any]) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode("utf-8"))


def plain_of(content: Mapping[str, Any]) -> str:
    """The plain text a person reads of a message content (tests, harnesses)."""
    return str(content.get("body") or "")


def number_of(text: str) -> int | None:
    """1…10 for a reply that is only a number (`2`, `#2`, `2.`) or a keycap emoji, else None."""
    stripped = text.strip().lstrip("#").rstrip(".)").strip()
    if stripped in KEYCAPS:
        return KEYCAPS.index(stripped) + 1
    if stripped.isdigit() and 1 <= int(stripped) <= MAX_ACTIONS:
        return int(stripped)
    return None


def edit_content(content: Mapping[str, Any], original_event_id: str) -> dict[str, Any]:
    """An `m.replace` edit of `original_event_id` whose new content is `content`."""
    new = dict(content)
    edited = {**new, "body": "* " + str(new.get("body") or "")}
    if "formatted_body" in new:
        edited["formatted_body"] = "* " + str(new["formatted_body"])
    edited["m.new_content"] = new
    edited["m.relates_to"] = {"rel_type": "m.replace", "event_id": original_event_id}
    return edited


def in_thread(content: Mapping[str, Any], thread_root: str) -> dict[str, Any]:
    """`content` posted in the thread rooted at `thread_root` (`m.thread`, with the fallback for
    clients that do not show threads)."""
    return {**content, "m.relates_to": {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": True,
                                         "m.in_reply_to": {"event_id": thread_root}}}


def image_content(alt: str, url: str, size: int, width: int | None, height: int | None, filename: str,
                  encrypted_file: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An `m.image` (its alt text as body); `encrypted_file` (the upload's keys) for an encrypted room."""
    info: dict[str, Any] = {"mimetype": "image/png", "size": int(size)}
    if width and height:
        info.update(w=int(width), h=int(height))
    content: dict[str, Any] = {"msgtype": "m.image", "body": _literal(alt)[:1000] or filename, "filename": filename,
                               "info": info, "m.mentions": {}}
    if encrypted_file is not None:
        content["file"] = {**encrypted_file, "url": url}
    else:
        content["url"] = url
    return content


def file_content(filename: str, url: str, size: int, mimetype: str,
                 encrypted_file: Mapping[str, Any] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"msgtype": "m.file", "body": filename, "filename": filename,
                               "info": {"mimetype": mimetype, "size": int(size)}, "m.mentions": {}}
    if encrypted_file is not None:
        content["file"] = {**encrypted_file, "url": url}
    else:
        content["url"] = url
    return content


def texts_of(contents: Sequence[Mapping[str, Any]]) -> list[str]:
    return [plain_of(c) for c in contents]
