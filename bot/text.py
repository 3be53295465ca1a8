"""Text helpers: matching keys, sanitising user input, mention markers.

Mention markers are how a handler says "ping this person": `⟦@U123⟧`. User input
can never contain the marker brackets (`sanitize` replaces them), so only people
the bot means to ping are ever rendered as a platform mention.
"""
from __future__ import annotations

import re
import unicodedata

MARK_OPEN = "\u27e6"
MARK_CLOSE = "\u27e7"
_MARKER = re.compile(MARK_OPEN + r"([@#!])([^" + MARK_CLOSE + r"\s]{1,200})" + MARK_CLOSE)
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


def sanitize(text: str, keep: "tuple[str, ...] | list[str]" = ()) -> str:
    """Remove control characters and mention-marker brackets from user text.

    `keep`: platform user ids whose mention markers an adapter put there itself (the
    message's parsed mentions); those markers survive, every other bracket is replaced.
    """
    allowed = {mention_marker(uid) for uid in keep}
    if allowed:
        pattern = "(" + "|".join(re.escape(m) for m in sorted(allowed)) + ")"
        return "".join(part if part in allowed else sanitize(part) for part in re.split(pattern, text))
    text = text.replace(MARK_OPEN, "(").replace(MARK_CLOSE, ")")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def shorten(text: str, limit: int) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def mention_marker(platform_user_id: str) -> str:
    """Ping this person (rendered `<@U…>` on Slack, `<at>` on Teams, `@handle` in the console)."""
    return f"{MARK_OPEN}@{platform_user_id}{MARK_CLOSE}"


def channel_marker(platform_channel_id: str) -> str:
    return f"{MARK_OPEN}#{platform_channel_id}{MARK_CLOSE}"


def split_markers(text: str) -> list[tuple[str, str]]:
    """Split rendered text into ("text", s), ("user", id) and ("channel", id) parts."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _MARKER.finditer(text):
        if m.start() > pos:
            parts.append(("text", text[pos : m.start()]))
        parts.append(("user" if m.group(1) == "@" else "channel", m.group(2)))
        pos = m.end()
    if pos < len(text):
        parts.append(("text", text[pos:]))
    return parts


def strip_markers(text: str, names: dict[str, str] | None = None) -> str:
    """Plain text with markers replaced by names (or ids): for logs and fallbacks."""
    names = names or {}
    out = []
    for kind, value in split_markers(text):
        if kind == "text":
            out.append(value)
        elif kind == "user":
            out.append("@" + names.get(value, value))
        else:
            out.append("#" + names.get(value, value))
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
