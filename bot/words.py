"""The words people type for switches, days, months, durations and dates: one parser.

The vocabulary lives in `prompts/<lang>/words.yaml` (alternatives separated by `|`); every
language's words are accepted whatever the person's language, since people mix them. Text is
compared case- and accent-insensitively (`Décembre` = `decembre`).

One weekday numbering everywhere: Monday = 0 … Sunday = 6, as `datetime.weekday()`. Cron
expressions keep cron's own numbering; `handlers.digests.cron` converts at that boundary.

`parse_when` reads a moment: `2026-12-15`, `15/12`, `15/12/2026`, `15 décembre`,
`December 15`, `lundi 9h`, `monday 9am`, `14:00`, `tomorrow`/`demain`, `in 3 days`/`dans 3
jours`, after an optional `until …`/`jusqu'au …`. A day without a time means the start of
that day; a day and month without a year is the next such day (today included); an explicit
date in the past is returned as it is, for the command to refuse.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Mapping
from zoneinfo import available_timezones

from bot.i18n import Prompts
from bot.text import norm_token

PREFIX = "words."
_KINDS = {"yes": ("switch", True), "no": ("switch", False), "until": ("until", True), "filler": ("filler", True),
          "in": ("in", True), "next": ("next", True), "today": ("offset", 0), "tomorrow": ("offset", 1),
          "after_tomorrow": ("offset", 2), "am": ("meridiem", "am"), "pm": ("meridiem", "pm")}
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
          "week": timedelta(weeks=1)}
_SPLIT = re.compile(r"[\s,;'’`]+")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2}|\d{4}))?$")
_DAY = re.compile(r"^(\d{1,2})(?:er|e|eme|st|nd|rd|th)?$")
_YEAR = re.compile(r"^\d{4}$")
_TIME = re.compile(r"^(\d{1,2})(?:(h|:)(\d{2})?)?(am|pm|a\.m\.|p\.m\.)?$")
_AMOUNT = re.compile(r"(\d+(?:[.,]\d+)?)\s*([^\d\s.,]*)")
MAX_PHRASE = 4


def tokens(text: str) -> list[str]:
    """Lower-case, accent-free words; apostrophes split (`jusqu'au` → `jusqu`, `au`)."""
    return [t for t in (w.strip("!?()«»\"“”") for w in _SPLIT.split(norm_token(text))) if t]


@dataclass(frozen=True)
class Vocabulary:
    """Phrase (a tuple of tokens) → what it means, by kind: `{"weekday": 0, "month": 3}`."""
    phrases: Mapping[tuple[str, ...], Mapping[str, object]] = field(default_factory=dict)

    @classmethod
    def from_prompts(cls, prompts: Prompts) -> "Vocabulary":
        phrases: dict[tuple[str, ...], dict[str, object]] = {}
        for lang in prompts.languages():
            for key in sorted(prompts.keys(lang)):
                meaning = _meaning(key)
                if meaning is None:
                    continue
                kind, value = meaning
                entry = prompts.raw(lang, key)
                if not isinstance(entry, str):
                    raise ValueError(f"{lang} {key}: the words are one string, alternatives separated by |")
                for alternative in entry.split("|"):
                    phrase = tuple(tokens(alternative))
                    if not phrase:
                        continue
                    if len(phrase) > MAX_PHRASE:
                        raise ValueError(f"{lang} {key}: {alternative!r} has more than {MAX_PHRASE} words")
                    known = phrases.setdefault(phrase, {})
                    if known.get(kind, value) != value:
                        raise ValueError(f"{lang} {key}: {alternative!r} already means {kind} {known[kind]!r}")
                    known[kind] = value
        return cls(phrases)

    def meaning(self, text: str) -> Mapping[str, object]:
        """What the whole of `text` means (empty when it is not one known phrase)."""
        return self.phrases.get(tuple(tokens(text)), {})

    def terms(self, text: str) -> list[tuple[str, Mapping[str, object]]]:
        """`text` as (words, meaning) terms, the longest known phrase first at each place."""
        words = tokens(text)
        out: list[tuple[str, Mapping[str, object]]] = []
        i = 0
        while i < len(words):
            for size in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                phrase = tuple(words[i:i + size])
                if size == 1 or phrase in self.phrases:
                    out.append((" ".join(phrase), self.phrases.get(phrase, {})))
                    i += size
                    break
        return out


def _meaning(key: str) -> tuple[str, object] | None:
    if not key.startswith(PREFIX):
        return None
    name = key[len(PREFIX):]
    if name in _KINDS:
        return _KINDS[name]
    group, _, index = name.partition(".")
    if group == "weekday" and index.isdigit():
        return "weekday", int(index)
    if group == "month" and index.isdigit():
        return "month", int(index)
    if group == "unit" and index in _UNITS:
        return "unit", _UNITS[index]
    return None  # display names (words.day_name.*) are not read


@lru_cache(maxsize=8)
def vocabulary(prompts: Prompts) -> Vocabulary:
    """The vocabulary of a loaded catalogue (handlers pass `ctx.services.prompts`)."""
    return Vocabulary.from_prompts(prompts)


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The shipped prompts' vocabulary, for pure code that holds no catalogue (loaded on first use)."""
    return Vocabulary.from_prompts(Prompts.load())


def _vocab(vocab: Vocabulary | None) -> Vocabulary:
    return vocab if vocab is not None else default_vocabulary()


# Single words ------------------------------------------------------------------------
def parse_switch(text: str, vocab: Vocabulary | None = None) -> bool | None:
    """True for yes/on/enable/oui/activer…, False for no/off/disable/non/désactiver…, else None."""
    value = _vocab(vocab).meaning(text).get("switch")
    return value if isinstance(value, bool) else None


def parse_weekday(text: str, vocab: Vocabulary | None = None) -> int | None:
    """Monday = 0 … Sunday = 6 for `lundi`, `Monday`, `mon`, `mardis`…; else None."""
    value = _vocab(vocab).meaning(text).get("weekday")
    return value if isinstance(value, int) else None


def parse_month(text: str, vocab: Vocabulary | None = None) -> int | None:
    """1 … 12 for `décembre`, `December`, `dec`…; else None."""
    value = _vocab(vocab).meaning(text).get("month")
    return value if isinstance(value, int) else None


def parse_duration(text: str, vocab: Vocabulary | None = None) -> timedelta | None:
    """`2h`, `30 min`, `1h30`, `3 jours`, `2 weeks`, `1.5 hours`; None when anything else is
    there or the total is not positive. A number after hours without a unit is minutes."""
    units = _vocab(vocab)
    text = norm_token(text).strip()
    total, pos, previous = timedelta(0), 0, None
    while pos < len(text):
        m = _AMOUNT.match(text, pos)
        if m is None or m.start() != pos:
            return None
        amount, word = float(m.group(1).replace(",", ".")), m.group(2)
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        unit = units.meaning(word).get("unit") if word else None
        if unit is None and not word and previous == timedelta(hours=1) and pos >= len(text):
            unit = timedelta(minutes=1)
        if not isinstance(unit, timedelta):
            return None
        total += amount * unit
        previous = unit
    return total if total > timedelta(0) else None


def parse_time(text: str, vocab: Vocabulary | None = None) -> time | None:
    """`9h`, `9h30`, `14:00`, `9am`, `9:30 pm`, `9 du soir`; a bare number is not a time."""
    terms = _vocab(vocab).terms(text)
    if not terms:
        return None
    meridiem = terms[-1][1].get("meridiem") if len(terms) == 2 else None
    if len(terms) > 2 or (len(terms) == 2 and meridiem is None):
        return None
    return _clock(terms[0][0], meridiem)


def _clock(token: str, meridiem: object = None) -> time | None:
    m = _TIME.match(token)
    if m is None:
        return None
    hour, minute = int(m.group(1)), int(m.group(3) or 0)
    suffix = (m.group(4) or "").replace(".", "") or meridiem
    if not (m.group(2) or suffix):
        return None
    if suffix:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {z.casefold(): z for z in available_timezones()}


def parse_timezone(text: str) -> str | None:
    """The canonical IANA name for `europe/paris`, `Europe/Paris`, `america/new york`, `utc`."""
    return _zones().get(text.strip().replace(" ", "_").casefold())


# Moments -----------------------------------------------------------------------------
def _year(token: str) -> int | None:
    return int(token) if _YEAR.match(token) else None


def _day_number(token: str) -> int | None:
    m = _DAY.match(token)
    return int(m.group(1)) if m else None


def _real(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_of(today: date, month: int, day: int) -> date | None:
    """The next `day`/`month` on or after `today` (29 February waits for a leap year)."""
    for year in range(today.year, today.year + 9):
        found = _real(year, month, day)
        if found is not None and found >= today:
            return found
    return None


@dataclass
class _Reading:
    day: date | None = None
    at: time | None = None
    failed: bool = False

    def set_day(self, value: date | None) -> None:
        if value is None or self.day is not None:
            self.failed = True
        else:
            self.day = value


def parse_when(text: str, now: datetime, tz: tzinfo, vocab: Vocabulary | None = None, *,
               lenient: bool = False) -> datetime | None:
    """The moment `text` names, as an aware datetime in `tz`; None when it names none.

    `lenient`: words that are no part of a date are skipped (`until 2026-12-01, holidays`)
    instead of making the whole text unreadable."""
    v = _vocab(vocab)
    terms = [(w, m) for w, m in v.terms(text) if not {"until", "filler"} & set(m)]
    local = now.astimezone(tz)
    today = local.date()
    if terms and "in" in terms[0][1]:
        span = parse_duration(" ".join(w for w, _ in terms[1:]), v)
        return local + span if span is not None else None
    reading = _Reading()
    i = 0
    while i < len(terms):
        word, meaning = terms[i]
        following = terms[i + 1] if i + 1 < len(terms) else ("", {})
        after = terms[i + 2] if i + 2 < len(terms) else ("", {})
        used = 1
        if m := _ISO.match(word):
            reading.set_day(_real(int(m.group(1)), int(m.group(2)), int(m.group(3))))
        elif m := _DMY.match(word):
            day, month, year = int(m.group(1)), int(m.group(2)), m.group(3)
            if year is None:
                reading.set_day(_next_of(today, month, day))
            else:
                reading.set_day(_real(int(year) + (2000 if len(year) == 2 else 0), month, day))
        elif (day := _day_number(word)) is not None and "month" in following[1]:
            year = _year(after[0])
            month = int(following[1]["month"])  # type: ignore[call-overload]
            reading.set_day(_next_of(today, month, day) if year is None else _real(year, month, day))
            used = 3 if year is not None else 2
        elif "month" in meaning and (day := _day_number(following[0])) is not None:
            year = _year(after[0])
            month = int(meaning["month"])  # type: ignore[call-overload]
            reading.set_day(_next_of(today, month, day) if year is None else _real(year, month, day))
            used = 3 if year is not None else 2
        elif "weekday" in meaning:
            days = (int(meaning["weekday"]) - today.weekday()) % 7 or 7  # type: ignore[call-overload]
            reading.set_day(today + timedelta(days=days))
        elif "offset" in meaning:
            reading.set_day(today + timedelta(days=int(meaning["offset"])))  # type: ignore[call-overload]
        elif "next" in meaning:
            pass
        elif reading.at is None and (at := _clock(word, following[1].get("meridiem"))) is not None:
            reading.at = at
            used = 2 if "meridiem" in following[1] else 1
        elif not lenient:
            return None
        if reading.failed:
            return None
        i += used
    if reading.day is None and reading.at is None:
        return None
    if reading.day is None:
        assert reading.at is not None
        moment = datetime.combine(today, reading.at, tzinfo=tz)
        return moment if moment > local else datetime.combine(today + timedelta(days=1), reading.at, tzinfo=tz)
    return datetime.combine(reading.day, reading.at or time(0), tzinfo=tz)


def parse_quiet_hours(spec: str) -> tuple[time, time] | None:
    """"21:00-07:30" → (21:00, 07:30); "off" or "" → None; ValueError when malformed."""
    spec = spec.strip().lower().replace(" ", "")
    if spec in ("", "off", "none"):
        return None
    start, sep, end = spec.partition("-")
    if not sep:
        raise ValueError(spec)
    return _hhmm(start), _hhmm(end)


def _hhmm(text: str) -> time:
    text = text.replace("h", ":")
    hours, _, minutes = text.partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise ValueError(text)
    h, m = int(hours), int(minutes or 0)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(text)
    return time(h, m)
