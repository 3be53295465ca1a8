"""What an addressed message asks the bot: the command text, wherever the bot was mentioned.

People address the bot mid-sentence (`hey @causette who knows pricing?`, `who knows pricing,
@causette?`). Adapters remove the bot's own mention from the text and say where it stood
(`IncomingMessage.bot_mention_at`); `command_text` is the one rule turning that into the text
the registry matches:

1. the text after the mention, when it matches a command;
2. else the text before it, when that matches (a polite greeting or a question ending with
   the mention);
3. else the whole text, the mention removed (the usual "unknown command" hint follows).

A message that starts with the mention (or has none: a DM, a slash command) is its own
command text. Broadcasts and group mentions are never part of a command's name (see
`_LEADING_AT`); a trailing `?` does not stop a command matching.
"""
from __future__ import annotations

import re
from typing import Callable

from bot.text import MARK_CLOSE, MARK_OPEN

# No command starts with a group: `@words` (broadcasts and group tags, which adapters leave as
# plain text: `<!channel>` -> "@channel") and channel markers (Teams channel and team mentions)
# are dropped from the start of the command text, broadcasts also from its end; anywhere else
# they stay inert text. A person's marker stays: `@bob thanks for the help` is still unclear.
_LEADING_AT = re.compile(r"^(?:(?:@\S+|" + MARK_OPEN + "#[^" + MARK_CLOSE + r"\s]+" + MARK_CLOSE + r")\s*)+")
_TRAILING_BROADCASTS = re.compile(r"(?:(?<=\s)|^)@(?:channel|here|everyone)[?!.,;:]*(?:\s+@(?:channel|here|everyone)[?!.,;:]*)*\s*$",
                                  re.IGNORECASE)
_SEPARATORS = " \t\n,;:"  # between the mention and the command: "@causette, help", "pricing? @causette"

Matches = Callable[[str], object]


def command_text(text: str, at: int | None, matches: Matches, prefix: str = "") -> str:
    """The command text of an addressed message.

    `text` has the bot's mention removed; `at` is where it stood (None: not mentioned);
    `matches(candidate)` is truthy when the candidate starts with a command (`Registry.match`);
    `prefix` is the slash command's name, tolerated before the command (`/causette help`).
    Returns "" when nothing is left to run.
    """
    if at is None or not text[: max(0, min(at, len(text)))].strip():
        whole = _clean(text if at is None else text.lstrip(_SEPARATORS), prefix)
        return _matching(whole, matches) or whole
    at = min(at, len(text))
    before, after = text[:at], text[at:]
    for candidate in (_clean(after.lstrip(_SEPARATORS), prefix), _clean(before.rstrip(_SEPARATORS), prefix)):
        found = _matching(candidate, matches)
        if found:
            return found
    return _clean(f"{before.rstrip()} {after.lstrip()}", prefix)


def _clean(candidate: str, prefix: str) -> str:
    """Without leading `@words`, trailing broadcasts and the slash command's name."""
    text = _TRAILING_BROADCASTS.sub("", _LEADING_AT.sub("", candidate.strip())).strip()
    if prefix and (text == prefix or text.startswith(prefix + " ")):
        text = _LEADING_AT.sub("", text[len(prefix) :].strip())
    return text


def _matching(candidate: str, matches: Matches) -> str:
    """`candidate` when it starts with a command, else without its trailing `?` when that does;
    else "". A lone `?` (the end of `who knows pricing @causette?`) is no command here."""
    bare = candidate.rstrip("?？ \t\n")
    if not bare:
        return ""
    if matches(candidate):
        return candidate
    return bare if bare != candidate and matches(bare) else ""
