"""Cron expressions read in a time zone, with explicit daylight-saving rules.

We compute occurrences ourselves with zoneinfo rather than with APScheduler's CronTrigger:
its `from_crontab` reads day-of-week 1 as Tuesday (its own numbering, not cron's), and
around an autumn fold it can return the repeated hour again and again. Rules here:

- fields: minute hour day-of-month month day-of-week, cron numbering (0 or 7 = Sunday),
  `*`, lists, ranges, steps and mon..sun / jan..dec names; when both day fields are
  restricted, a day matches either (classic cron);
- a wall time that does not exist (spring gap, 02:30 in Paris on 2026-03-29) runs once,
  shifted forward by the gap (03:30 local);
- a wall time that exists twice (autumn fold) runs once, at its first occurrence;
- each occurrence has a period key, its local wall time `YYYY-MM-DDTHH:MM`: two processes
  that compute the same occurrence claim the same key.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_DOW_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MONTH_NAMES = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_SEARCH_DAYS = 366 * 8 + 2  # long enough for "29 2 *" landing on a leap Monday


def cron_weekday(weekday: int) -> int:
    """Cron's day-of-week number (0 = Sunday) for a `datetime.weekday()` one (0 = Monday)."""
    return (weekday + 1) % 7


def weekday_of_cron(dow: int) -> int:
    """The `datetime.weekday()` number (0 = Monday) of cron's day of week (0 or 7 = Sunday)."""
    return (dow - 1) % 7


class CronError(ValueError):
    """The expression is not a valid five-field cron expression."""


def _value(token: str, index: int) -> int:
    names = _DOW_NAMES if index == 4 else _MONTH_NAMES if index == 3 else {}
    lowered = token.lower()
    if lowered in names:
        return names[lowered]
    if not token.isdigit():
        raise CronError(token)
    value = int(token)
    low, high = _BOUNDS[index]
    if not low <= value <= high:
        raise CronError(token)
    return value


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise CronError(part)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, index), _value(b, index)
            if start > end:
                raise CronError(part)
        else:
            start = _value(base, index)
            end = high if step else start
        values.update(range(start, end + 1, step or 1))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # cron numbering, 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expr: str) -> "Cron":
        parts = expr.split()
        if len(parts) != 5:
            raise CronError(expr)
        fields = [_field(p, i) for i, p in enumerate(parts)]
        if not all(fields):
            raise CronError(expr)
        return cls(" ".join(parts), *fields, days_restricted=parts[2] != "*", weekdays_restricted=parts[4] != "*")

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = cron_weekday(day.weekday()) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def _times(self) -> list[tuple[int, int]]:
        return [(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]


def to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time to UTC: first occurrence in a fold, shifted forward in a gap."""
    # fold=0 picks the first of two repeated wall times; in a gap it reads the wall time
    # with the offset from before the change, which lands after the gap (02:30 → 03:30 CEST).
    return wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def period_key(when_utc: datetime, tz: ZoneInfo) -> str:
    return when_utc.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def next_after(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first occurrence strictly after `after` (aware), as an aware UTC datetime."""
    start = after.astimezone(tz).date() - timedelta(days=1)
    times = cron._times()
    for offset in range(_SEARCH_DAYS):
        day = start + timedelta(days=offset)
        if not cron.matches_day(day):
            continue
        candidates = [to_utc(datetime(day.year, day.month, day.day, h, m), tz) for h, m in times]
        later = [c for c in candidates if c > after]
        if later:
            return min(later)
    return None


def previous_wall(cron_frequency: str, when_utc: datetime, tz: ZoneInfo, following: datetime | None) -> datetime:
    """Where the period that ends at `when_utc` starts: one day, week or calendar month
    earlier in local wall time (so a week spanning a DST change is still 7 local days);
    for free cron expressions, the distance to the next occurrence, capped at 31 days."""
    local = when_utc.astimezone(tz).replace(tzinfo=None)
    if cron_frequency == "daily":
        wall = local - timedelta(days=1)
    elif cron_frequency == "weekly":
        wall = local - timedelta(days=7)
    elif cron_frequency == "monthly":
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        last_day = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
        wall = local.replace(year=year, month=month, day=min(local.day, last_day))
    else:
        gap = (following - when_utc) if following else timedelta(days=7)
        return when_utc - min(max(gap, timedelta(minutes=1)), timedelta(days=31))
    return to_utc(wall, tz)
