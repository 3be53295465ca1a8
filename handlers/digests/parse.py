"""Reading a schedule the way people type it, in English or French.

    weekly monday 09:00 Europe/Paris sources #pricing ideas kudos
    chaque lundi 9h            quotidien 18h30          mensuel le 1er 9h
    cron "0 9 * * 1"           daily 8am

Pure functions: the handler resolves `#tokens` to channels or hashtags itself and passes
the remaining words here. Every refusal is a `UserError` with a `digest.` prompt key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.context import UserError
from handlers.digests.cron import Cron, CronError, cron_weekday, weekday_of_cron
from bot.text import norm_token
from bot.words import Vocabulary, parse_timezone, parse_weekday

SECTIONS = ("discussions", "ideas", "help", "kudos", "newcomers")

_FREQUENCIES = {
    "daily": "daily", "everyday": "daily", "quotidien": "daily", "quotidienne": "daily", "quotidiennement": "daily",
    "jour": "daily", "day": "daily", "jours": "daily", "days": "daily",
    "weekly": "weekly", "hebdo": "weekly", "hebdomadaire": "weekly", "semaine": "weekly", "week": "weekly",
    "monthly": "monthly", "mensuel": "monthly", "mensuelle": "monthly", "mensuellement": "monthly", "mois": "monthly",
    "month": "monthly",
}
_SECTION_WORDS = {
    "discussions": "discussions", "discussion": "discussions", "threads": "discussions", "fils": "discussions",
    "ideas": "ideas", "idea": "ideas", "idees": "ideas", "idee": "ideas",
    "help": "help", "aide": "help", "requests": "help", "demandes": "help", "questions": "help",
    "kudos": "kudos", "thanks": "kudos", "merci": "kudos", "mercis": "kudos", "remerciements": "kudos",
    "newcomers": "newcomers", "newcomer": "newcomers", "arrivants": "newcomers", "arrivees": "newcomers",
    "nouveaux": "newcomers", "nouvelles": "newcomers", "members": "newcomers", "membres": "newcomers",
}
_WEAK = {"jour", "jours", "day", "days", "semaine", "week", "mois", "month"}  # "chaque jour", "day 1 of the month"
_FILLER = {
    "every", "each", "on", "at", "the", "a", "of", "in", "sources", "source", "with", "and", "new", "for",
    "chaque", "tous", "toutes", "les", "le", "la", "l", "a", "au", "du", "de", "des", "d", "avec", "et", "sur", "en",
    "day", "of", "month", "mois", "jour", "heure", "h", "requests", "request", "help-requests",
}
_TIME = re.compile(r"^(\d{1,2})(?:(?::|h)(\d{2})?)?(am|pm)?$")
_DAY_NUMBER = re.compile(r"^(\d{1,2})(?:er|e|st|nd|rd|th)?$")
_CRON = re.compile(r"\bcron\s*[\"“”'‘’](.+?)[\"“”'‘’]", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    frequency: str  # daily | weekly | monthly | cron
    cron: str       # always a valid five-field expression, read in `tz`
    tz: str | None  # None: the handler falls back to the channel's, then the person's


@dataclass(frozen=True)
class Request:
    schedule: Schedule
    sections: tuple[str, ...]
    words: tuple[str, ...]  # what was not understood (the handler reports it)


def check_tz(name: str) -> str:
    """The canonical IANA name, matched case-insensitively (`europe/paris` → `Europe/Paris`)."""
    found = parse_timezone(name)
    if found is None:
        raise UserError("digest.bad_tz", tz=name[:60])
    return found


def _day(word: str) -> int | None:
    """A day of the month ("1", "1er", "15th"); never a time ("9h", "9:00", "9am")."""
    m = _DAY_NUMBER.match(word)
    return int(m.group(1)) if m else None


def _time(token: str, *, bare_is_time: bool) -> tuple[int, int] | None:
    m = _TIME.match(token.lower())
    if not m:
        return None
    hour, minute, suffix = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    has_marker = ":" in token or "h" in token.lower() or suffix
    if not has_marker and not bare_is_time:
        return None
    if suffix == "pm" and hour < 12:
        hour += 12
    elif suffix == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise UserError("digest.bad_time", time=token[:20])
    return hour, minute


def parse_schedule(text: str, *, sections_allowed: bool = True, vocab: Vocabulary | None = None) -> Request:
    """Read frequency, day, time, time zone and section words from `text` (no #tokens).
    Weekday words come from `vocab` (bot/words.py; the shipped prompts' when None)."""
    cron_match = _CRON.search(text)
    frequency: str | None = None
    cron_expr = ""
    if cron_match:
        cron_expr = cron_match.group(1).strip()
        try:
            Cron.parse(cron_expr)
        except CronError:
            raise UserError("digest.bad_cron", cron=cron_expr[:60]) from None
        frequency = "cron"
        text = text[: cron_match.start()] + " " + text[cron_match.end():]
    tokens = [t for t in re.split(r"[\s,;]+|(?<=\w)['’](?=\w)", text) if t]
    words = [(raw, norm_token(raw).strip(".!")) for raw in tokens]
    words = [(raw, word) for raw, word in words if word]
    weekday: int | None = None
    weekdays = {word: day for _, word in words if (day := parse_weekday(word, vocab)) is not None}
    if frequency is None:
        strong = [_FREQUENCIES[w] for _, w in words if w in _FREQUENCIES and w not in _WEAK]
        weak = [_FREQUENCIES[w] for _, w in words if w in _WEAK]
        has_weekday = bool(weekdays)
        frequency = (strong or (["weekly"] if has_weekday else []) or weak or [None])[0]
    day_of_month: int | None = None
    at: tuple[int, int] | None = None
    tz: str | None = None
    sections: list[str] = []
    unknown: list[str] = []
    for raw, word in words:
        if "/" in raw or word == "utc":
            tz = check_tz("UTC" if word == "utc" else raw)
        elif word in _FREQUENCIES:
            continue
        elif word in weekdays and frequency == "weekly":
            weekday = weekdays[word]
        elif frequency == "monthly" and day_of_month is None and (day := _day(word)) is not None:
            if not 1 <= day <= 28:
                raise UserError("digest.bad_day", day=raw[:10])
            day_of_month = day
        elif at is None and (parsed := _time(word, bare_is_time=frequency != "monthly")) is not None:
            at = parsed
        elif word in _SECTION_WORDS and sections_allowed:
            if _SECTION_WORDS[word] not in sections:
                sections.append(_SECTION_WORDS[word])
        elif word in _FILLER:
            continue
        else:
            unknown.append(raw)
    if frequency is None:
        raise UserError("digest.missing_frequency")
    if frequency != "cron":
        hour, minute = at or (9, 0)
        if frequency == "daily":
            cron_expr = f"{minute} {hour} * * *"
        elif frequency == "weekly":
            cron_expr = f"{minute} {hour} * * {cron_weekday(0 if weekday is None else weekday)}"
        else:
            cron_expr = f"{minute} {hour} {day_of_month or 1} * *"
    return Request(Schedule(frequency, cron_expr, tz), tuple(sections), tuple(unknown))


def describe(schedule_frequency: str, cron: str) -> dict[str, object]:
    """Parameters for the `digest.when.*` prompts: the frequency, day and time of a schedule
    (`weekday`: Monday = 0, as everywhere outside cron expressions)."""
    parts = cron.split()
    if schedule_frequency == "cron" or len(parts) != 5:
        return {"cron": cron}
    minute, hour, dom, _, dow = parts
    params: dict[str, object] = {"time": f"{int(hour):02d}:{int(minute):02d}"}
    if schedule_frequency == "weekly":
        params["weekday"] = weekday_of_cron(int(dow))
    if schedule_frequency == "monthly":
        params["day"] = int(dom)
    return params
