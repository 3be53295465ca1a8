"""Text helpers: matching keys, sanitising user input, and the markers of rendered text.

Text that handlers put in a `Reply` is *literal* for adapters: they escape every character
for the target format (Slack mrkdwn, Teams Markdown/HTML, the console), except these markers,
the only markup there is:

- `mention_marker(id)` `⟦@U123⟧` / `channel_marker(id)` `⟦#C123⟧` name a person or channel:
  what an adapter makes of a mention typed by someone, kept in stored text. Rendered as a
  plain name (`@Sophie Martin`, `#sales`), never as a ping or a live link.
- `ping_marker(id)` / `link_marker(id)`: the person or channel the bot itself means to ping
  or link (`ctx.mention`, `ctx.channel_link`). They carry `LIVE_KEY`, a random key of this
  process: nothing typed by a person, synced from a platform (display names, titles) or read
  back from the database can carry it, so only markers made here and now become `<@U…>`,
  `<at>…</at>` or `<#C…>`. A stale one (another process) degrades to a plain name.
- `⟪`…`⟫`: a code span. `bot.i18n.Prompts.t` makes one from each `` `…` `` of a prompt
  template (never from a parameter), so the bot's own formatting survives escaping.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from bot.types import Reply

MARK_OPEN = "\u27e6"
MARK_CLOSE = "\u27e7"
LIVE = "*"
LIVE_KEY = secrets.token_hex(6)
CODE_OPEN = "\u27ea`"
CODE_CLOSE = "`\u27eb"
_MARKER = re.compile(
    MARK_OPEN + r"(?:(?P<live>\*[0-9a-f]{1,32})?(?P<kind>[@#])(?P<id>[^" + MARK_CLOSE + r"\s]{1,200}))" + MARK_CLOSE
    + "|" + re.escape(CODE_OPEN) + r"(?P<code>.*?)" + re.escape(CODE_CLOSE),
    re.DOTALL,
)
_STRAY_CODE = re.compile("[\u27ea\u27eb]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
_KEY_PUNCT = re.compile(r"[\s'’`´\-_/.,;:!?()\[\]{}\"«»]+")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def norm_key(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key: "Appel d'Offres" -> "appel d offres"."""
    return _KEY_PUNCT.sub(" ", strip_accents(text).casefold()).strip()


def norm_token(token: str) -> str:
    return strip_accents(token).casefold()


def sanitize(text: str, keep: "tuple[str, ...] | list[str]" = (),
             channels: "tuple[str, ...] | list[str]" = ()) -> str:
    """Remove control characters and marker brackets from user text.

    `keep`: platform user ids whose mention markers an adapter put there itself (the
    message's parsed mentions); `channels`: likewise, channel ids the adapter named with a
    channel marker. Those markers survive; every other bracket is replaced.
    """
    allowed = {mention_marker(uid) for uid in keep} | {channel_marker(cid) for cid in channels}
    if allowed:
        pattern = "(" + "|".join(re.escape(m) for m in sorted(allowed)) + ")"
        return "".join(part if part in allowed else sanitize(part) for part in re.split(pattern, text))
    text = text.replace(MARK_OPEN, "(").replace(MARK_CLOSE, ")").replace("\u27ea", "«").replace("\u27eb", "»")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def shorten(text: str, limit: int) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def shorten_marked(text: str, limit: int | None) -> str:
    """Shorten text that may hold markers or code spans without cutting one in half."""
    if limit is None or len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    if cut.rfind(MARK_OPEN) > cut.rfind(MARK_CLOSE):
        cut = cut[: cut.rfind(MARK_OPEN)]
    if cut.rfind(CODE_OPEN[0]) > cut.rfind(CODE_CLOSE[-1]):
        cut = cut[: cut.rfind(CODE_OPEN[0])]
    return cut.rstrip() + "…"


def mention_marker(platform_user_id: str) -> str:
    """Names a person (a mention someone typed): rendered as their name, never a ping."""
    return f"{MARK_OPEN}@{platform_user_id}{MARK_CLOSE}"


def channel_marker(platform_channel_id: str) -> str:
    """Names a channel (one someone typed): rendered as `#name`, never a live link."""
    return f"{MARK_OPEN}#{platform_channel_id}{MARK_CLOSE}"


def channel_ids_in(text: str) -> tuple[str, ...]:
    """The ids of the channel markers in `text`, in order, once each (for an adapter whose
    text was sanitized before it put its own markers in)."""
    found = [m.group("id") for m in _MARKER.finditer(text) if m.group("kind") == "#" and not m.group("live")]
    return tuple(dict.fromkeys(found))


def ping_marker(platform_user_id: str) -> str:
    """Ping this person (`<@U…>` on Slack, `<at>` on Teams): only for people the bot means."""
    return f"{MARK_OPEN}{LIVE}{LIVE_KEY}@{platform_user_id}{MARK_CLOSE}"


def link_marker(platform_channel_id: str) -> str:
    """A live link to a channel the bot means (`<#C…>` on Slack)."""
    return f"{MARK_OPEN}{LIVE}{LIVE_KEY}#{platform_channel_id}{MARK_CLOSE}"


def code_span(text: str) -> str:
    """The bot's own code formatting around `text` (commands in prompts)."""
    return f"{CODE_OPEN}{text}{CODE_CLOSE}"


MarkerKind = str  # "text" | "user" | "channel" | "ping" | "link" | "code"


def split_markers(text: str) -> list[tuple[MarkerKind, str]]:
    """Split reply text into ("text", s), ("user", id), ("channel", id) (names, never live),
    ("ping", id), ("link", id) (live, made by this process) and ("code", s) parts.

    "text" parts are literal: a renderer escapes them whole. Stray code brackets (a code
    span cut in half by `shorten`) are dropped."""
    parts: list[tuple[MarkerKind, str]] = []
    pos = 0
    for m in _MARKER.finditer(text):
        if m.start() > pos:
            parts.append(("text", _STRAY_CODE.sub("", text[pos : m.start()])))
        if m.group("code") is not None:
            parts.append(("code", _STRAY_CODE.sub("", m.group("code"))))
        else:
            live = m.group("live") == LIVE + LIVE_KEY
            if m.group("kind") == "@":
                parts.append(("ping" if live else "user", m.group("id")))
            else:
                parts.append(("link" if live else "channel", m.group("id")))
        pos = m.end()
    if pos < len(text):
        parts.append(("text", _STRAY_CODE.sub("", text[pos:])))
    return [p for p in parts if p != ("text", "")]


def marker_ids(texts: "list[str] | tuple[str, ...]") -> tuple[list[str], list[str]]:
    """The person ids and channel ids named (live or not) in `texts`, for a name lookup."""
    users: list[str] = []
    channels: list[str] = []
    for text in texts:
        if MARK_OPEN not in text:
            continue
        for kind, value in split_markers(text):
            if kind in ("user", "ping") and value not in users:
                users.append(value)
            elif kind in ("channel", "link") and value not in channels:
                channels.append(value)
    return users, channels


def reply_texts(reply: "Reply") -> list[str]:
    """Every text of a reply that may name people or channels (for an adapter's name lookup)."""
    texts = [reply.text]
    if reply.card is not None:
        c = reply.card
        texts += [c.title, c.body, c.footer, *(k + v for k, v in c.fields), *(h + b for h, b in c.sections),
                  *(a.label for a in c.actions)]
    if reply.form is not None:
        texts += [reply.form.title, *(f.label for f in reply.form.fields), *(lbl for f in reply.form.fields for _, lbl in f.options)]
    return texts


def strip_markers(text: str, names: dict[str, str] | None = None, channels: dict[str, str] | None = None) -> str:
    """Plain text with markers replaced by names (or ids): for logs, plain-text fields, fallbacks,
    exports. `names` names people (and channels too when `channels` is not given)."""
    people = names or {}
    rooms = people if channels is None else channels
    return named_text(text, lambda uid: people.get(uid, uid), lambda cid: rooms.get(cid, cid))


def named_text(text: str, user_name: Callable[[str], str], channel_name: Callable[[str], str]) -> str:
    """Plain text with every marker, live or not, as `@name` / `#name` and code spans in
    backticks: what a medium without markup shows (the console, logs, plain fallbacks)."""
    out = []
    for kind, value in split_markers(text):
        if kind == "text":
            out.append(value)
        elif kind == "code":
            out.append(f"`{value}`")
        elif kind in ("user", "ping"):
            out.append("@" + user_name(value))
        else:
            out.append("#" + channel_name(value))
    return "".join(out)


_HASHTAG = re.compile(
    r"(?<![\w&/#<|:" + MARK_OPEN + r"])#((?:[^\W\d_]|\d)[\w\-]*(?:[’'][\w\-]+)*)",
    re.UNICODE,
)


def extract_hashtags(text: str) -> tuple[str, ...]:
    """Hashtags in display form, in order, without duplicates (by key).

    Not hashtags: `#1`-style numbers, URL fragments (`/page#top`), Slack channel links
    (`<#C123|x>`), Matrix room aliases (`#room:server`), HTML entities (`&#39;`).
    """
    seen: set[str] = set()
    found: list[str] = []
    for m in _HASHTAG.finditer(text):
        tag = m.group(1).rstrip("-'’")
        end = m.end()
        if end < len(text) and text[end] == ":" and end + 1 < len(text) and not text[end + 1].isspace():
            continue  # Matrix room alias #room:server
        if not any(ch.isalpha() for ch in tag):
            continue
        key = norm_key(tag).replace(" ", "")
        if key and key not in seen:
            seen.add(key)
            found.append(tag)
    return tuple(found)


def topic_key(tag: str) -> str:
    """Matching key of a hashtag or topic: case- and accent-insensitive, no separators."""
    return norm_key(tag.lstrip("#")).replace(" ", "")


class Names:
    """Display names for the ids markers carry (a renderer shows names, not ids)."""

    def __init__(self, users: "dict[str, str] | None" = None, channels: "dict[str, str] | None" = None) -> None:
        self.users = dict(users or {})
        self.channels = dict(channels or {})

    def user(self, uid: str) -> str:
        return self.users.get(uid) or uid

    def channel(self, cid: str) -> str:
        return self.channels.get(cid) or cid


NO_NAMES = Names()
