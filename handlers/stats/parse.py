"""What `stats …` asks for: a scope word, a channel, a profile value, a period.

Pure: text in, a `Request` out (the store resolves names). Periods: `7d`, `28d`, `90 days`,
`12 weeks`, `3 months`, `90j`, `12 semaines`, `3 mois` (bot.words' units, months from
prompts `stats.words.month`); a month is 30.44 days, so `12 months` is 365 days, the limit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from bot.text import norm_token
from bot.words import Vocabulary, parse_duration

DAYS_IN_MONTH = 30.44
MAX_DAYS = 366

# the first word(s) of `stats <what>`, both languages, matched accent- and case-blind
WORDS: dict[str, str] = {
    "me": "me", "moi": "me", "mine": "me", "mes": "me",
    "all": "all", "tout": "all", "tous": "all", "organisation": "all", "organization": "all", "org": "all",
    "export": "export", "exporter": "export", "csv": "export",
    "dormant": "dormant", "dormants": "dormant", "inactive": "dormant", "inactifs": "dormant", "inactif": "dormant",
    "department": "department", "departement": "department", "dept": "department", "service": "department",
    "site": "site", "office": "site", "bureau": "site",
    "language": "language", "langue": "language", "lang": "language",
    "minimum": "minimum", "min": "minimum",
    "help": "help", "aide": "help", "definitions": "help",
}
LANGUAGES = {"en": "en", "english": "en", "anglais": "en", "fr": "fr", "french": "fr", "francais": "fr"}
_TAIL = re.compile(r"(?:^|\s)(\d+(?:[.,]\d+)?\s*[^\W\d_]+(?:\s+\d+(?:[.,]\d+)?\s*[^\W\d_]+)?)\s*$", re.UNICODE)


@dataclass(frozen=True)
class Request:
    what: str  # channel | department | site | language | all | me | export | dormant | minimum | help | here
    value: str = ""  # the channel text, the profile value, the minimum typed
    days: int | None = None  # None: the defaults (7 and 28 days; export 90)
    period_text: str = ""  # the period as typed, for messages


class PeriodError(ValueError):
    """`given` is not a period, or (`too_long`) longer than MAX_DAYS."""

    def __init__(self, given: str, too_long: bool = False) -> None:
        super().__init__(given)
        self.given, self.too_long = given, too_long


def parse_period(text: str, vocab: Vocabulary | None, month_words: set[str]) -> int | None:
    """Whole days in `text` ("90d", "12 weeks", "3 mois"); None when it is not a period.
    Raises PeriodError(too_long) past MAX_DAYS."""
    compact = norm_token(text).strip()
    m = re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*([^\W\d_]+)", compact)
    if m and m.group(2) in month_words:
        days = round(float(m.group(1).replace(",", ".")) * DAYS_IN_MONTH)
    else:
        duration = parse_duration(compact, vocab)
        if duration is None or duration < timedelta(days=1):
            return None
        days = round(duration / timedelta(days=1))
    if days > MAX_DAYS:
        raise PeriodError(text.strip(), too_long=True)
    return days if days >= 1 else None


def split_period(args: str, vocab: Vocabulary | None, month_words: set[str]) -> tuple[str, int | None, str]:
    """(`args` without a trailing period, days or None, the period as typed)."""
    m = _TAIL.search(args)
    if m:
        days = parse_period(m.group(1), vocab, month_words)
        if days is not None:
            return args[:m.start(1)].strip(), days, m.group(1).strip()
    return args.strip(), None, ""


def parse(args: str, vocab: Vocabulary | None, month_words: set[str]) -> Request:
    """`stats` arguments → a Request. A channel is `#name` (or a marker); a profile scope is
    its word and the value (`department Sales`, `site Lyon`, `langue fr`)."""
    rest, days, typed = split_period(args, vocab, month_words)
    words = rest.split()
    if not words:
        return Request("here", "", days, typed)
    first = WORDS.get(norm_token(words[0]))
    value = " ".join(words[1:]).strip()
    if first in ("department", "site", "language"):
        if first == "language":
            value = LANGUAGES.get(norm_token(value), value)
        return Request(first, value, days, typed)
    if first in ("me", "all", "export", "dormant", "help", "minimum"):
        return Request(first, value, days, typed)
    if "#" in rest or "\u27e6" in rest:
        return Request("channel", rest, days, typed)
    if days is None and re.fullmatch(r"\d+\s*\S*", rest):
        raise PeriodError(rest)  # "stats 13 lunes": looks like a period, is not one
    return Request("unknown", rest, days, typed)
