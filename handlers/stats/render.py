"""A ScopeReport as a Card in the reader's language (sections: people, help requests, ideas
and kudos, busiest threads, breakdown). Suppressed figures read "fewer than N"; a change is
shown only where both periods' figures are."""
from __future__ import annotations

from datetime import timedelta

from babel.dates import format_timedelta

from bot.context import Translate
from bot.text import shorten
from store.analytics import REFERENCE_RATE, BreakdownRow, Figures, MyActivity, ScopeReport


def count(t: Translate, value: int | None, minimum: int) -> str:
    return t("stats.fewer", min=minimum) if value is None else t("stats.number", n=value)


def percent(t: Translate, rate: float | None) -> str:
    return t("stats.na") if rate is None else t("stats.percent", value=round(rate * 100))


def change(t: Translate, now: int | None, before: int | None) -> str:
    if now is None or before is None:
        return ""
    delta = now - before
    if delta == 0:
        return t("stats.change_same")
    return t("stats.change_up", n=delta) if delta > 0 else t("stats.change_down", n=-delta)


def duration(t: Translate, locale: str, value: timedelta | None) -> str:
    if value is None:
        return t("stats.na")
    return format_timedelta(value, threshold=1.5, locale=locale)


def cell(t: Translate, value: int | None, minimum: int, withheld: bool) -> str:
    """A people count: the number, "fewer than N" for a small group, or "hidden" for a figure
    withheld only so that a small group next to it cannot be worked out."""
    return t("stats.withheld") if value is None and withheld else count(t, value, minimum)


def _people_line(t: Translate, key: str, periods: list[tuple[Figures, Figures]], attr: str, minimum: int) -> str:
    parts = []
    for cur, prev in periods:
        now, before = getattr(cur, attr), getattr(prev, attr)
        shown = cell(t, now, minimum, attr in cur.withheld)
        parts.append(t("stats.cell", days=cur.period.days, value=shown, change=change(t, now, before)))
    return t(key, values=" · ".join(parts))


def people_section(t: Translate, periods: list[tuple[Figures, Figures]], minimum: int) -> str:
    lines = [_people_line(t, f"stats.line.{attr}", periods, attr, minimum)
             for attr in ("members", "contributors", "reactors_only", "silent", "first_timers")]
    rates = " · ".join(t("stats.cell", days=cur.period.days, value=percent(t, cur.rate),
                         change=_rate_change(t, cur.rate, prev.rate)) for cur, prev in periods)
    low, high = (round(v * 100) for v in REFERENCE_RATE)
    lines.insert(2, t("stats.line.rate", values=rates, low=low, high=high))
    if any(cur.readers_measured for cur, _ in periods):
        lines.append(_people_line(t, "stats.line.readers", periods, "readers", minimum))
    return "\n".join(lines)


def _rate_change(t: Translate, now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    points = round(now * 100) - round(before * 100)
    if points == 0:
        return t("stats.change_same")
    return t("stats.points_up", n=points) if points > 0 else t("stats.points_down", n=-points)


def activity_section(t: Translate, locale: str, f: Figures) -> tuple[str, str]:
    help_text = "\n".join((
        t("stats.line.help_asked", count=f.help_asked),
        t("stats.line.help_answered", answered=f.help_answered, unanswered=f.help_unanswered),
        t("stats.line.help_times", median=duration(t, locale, f.reply_median), slowest=duration(t, locale, f.reply_slowest)),
    ))
    ideas_text = "\n".join((
        t("stats.line.posts", posts=f.posts, replies=f.replies, reactions=f.reactions),
        t("stats.line.ideas", ideas=f.ideas, forward=f.ideas_forward, votes=f.votes),
        t("stats.line.kudos", count=f.kudos),
    ))
    return help_text, ideas_text


def breakdown_section(t: Translate, rows: tuple[BreakdownRow, ...], minimum: int, label_of) -> str:  # type: ignore[no-untyped-def]
    lines = []
    for row in rows[:12]:
        name = label_of(row.label) if row.label else t("stats.not_set")
        if row.members is None:
            lines.append(t("stats.breakdown_hidden", name=name,
                           fewer=cell(t, None, minimum, "members" in row.withheld)))
        else:
            lines.append(t("stats.breakdown_line", name=name, members=row.members,
                           contributors=cell(t, row.contributors, minimum, "contributors" in row.withheld),
                           rate=percent(t, row.rate)))
    if len(rows) > 12:
        lines.append(t("stats.breakdown_more", count=len(rows) - 12))
    return "\n".join(lines)


def threads_section(t: Translate, report: ScopeReport, plain) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(t("stats.thread_line", rank=i, title=shorten(plain(th.title), 80) or t("stats.untitled"),
                       count=th.replies) for i, th in enumerate(report.threads, 1))


def my_section(t: Translate, mine: MyActivity) -> str:
    kinds = ("posts", "replies", "reactions", "ideas", "votes", "help_asked", "help_answered", "kudos_given")
    return "\n".join(t(f"stats.me.{k}", value=mine.counts[k], change=change(t, mine.counts[k], mine.previous[k]))
                     for k in kinds)
