"""The monthly référent report (issue 15, deliverable 5): one DM per référent and month, on the
first working day of the month at 09:00 in the référent's time zone, in their language.

When. The job `stats.monthly` runs every minute (bot.core ticks, once per period across every
process). A référent is due from 09:00 local (`Person.tz`, else the time zone most of the
workspace's people have, else UTC) on the first working day (Monday to Friday; public holidays
are not known to the bot and are not skipped) of their local month, for `GRACE` after that (a
bot that was down at 09:00 still sends the report when it is back the same or next day).

Exactly once. The report is built from a read-only snapshot (a whole-organisation report
reads for seconds: no write turn is held meanwhile, which on SQLite would stop every other
writer), then the DM for (référent, month) is claimed by inserting the idempotency key
`stats.monthly:<person id>:<YYYY-MM>` (store.idempotency.claim: a unique row, `INSERT … ON
CONFLICT DO NOTHING`) in the one short transaction that writes the DM to the durable outbox
(bot/outbox.py), as `notifications.flush` does. Two workers ticking at once may both build it;
one insert wins, the other's DM is dropped; a crash before the commit leaves neither the claim
nor the DM, so the next run builds it again. The outbox sends it after
the commit and retries a DM the platform refused for now. Without a running adapter (the
console, tests) the DM is returned as the job's effect, like every job's.

Paced like digest deliveries: at most `PER_RUN` (the digests' `SENDS_PER_TICK`) reports are
built per run, the others wait for the next minute; the outbox's sweeper then sends in
batches. It is a report the référent's role asks for, like a digest, not a real-time ping:
it is not counted in the notification budget (handlers/notifications), and quiet hours do not
apply (it comes at 09:00 local).

What. For each scope the référent holds (a channel, a department, a site, a language; the whole
organisation for a workspace-wide référent who is admin, else each department), the scope's
figures for last month against the month before (store.analytics.report: suppression and
who may read what decided there), the three channels whose message count moved most, one
suggested action chosen by the first rule that applies (help requests waiting more than two
days in a channel; a channel with no post for 45 days; first-time contributors to thank;
participation under the 20–25 % reference; else keep the rhythm), and the 12-week chart of the
first scope. Organisation scopes (department, site, language, all) only ever name public
channels: a private channel is named only in the report of its own référent. A référent whose
scopes saw nothing at all gets one friendly line, no card, no chart.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence

from babel.dates import format_date
from sqlalchemy import ColumnElement, case, false, func, or_, select
from sqlalchemy.orm import Session

from bot import outbox
from bot.context import Ctx, JobCtx, zone
from bot.registry import Job, Registry
from bot.types import Card, Effect, Outbound, Picture, UserRef
from handlers.digests.engine import SENDS_PER_TICK
from handlers.stats import render
from store import analytics
from store.analytics import Period, Scope, ScopeReport, Viewer
from store.idempotency import claim
from store.models.analytics import ActivityDay, RollupDay
from store.models.contribution import HelpRequest
from store.models.core import Conversation, Person, ProcessedEvent, Role, Workspace
from store.models.social import Message

log = logging.getLogger(__name__)
EVERY = timedelta(minutes=1)
SEND_AT = time(9, 0)
GRACE = timedelta(days=2)
PER_RUN = SENDS_PER_TICK
WAITED = timedelta(days=2)
DORMANT_DAYS = 45
MOVERS = 3
CHART_WEEKS = 12
KEY = "stats.monthly:{person}:{month}"


# When ----------------------------------------------------------------------------------------
def first_working_day(year: int, month: int) -> date:
    """The first Monday-to-Friday day of the month (public holidays are not known)."""
    day = date(year, month, 1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def send_time(year: int, month: int, tz: str) -> datetime:
    """09:00 on the month's first working day in `tz`, as an aware UTC datetime."""
    local = datetime.combine(first_working_day(year, month), SEND_AT, zone(tz))
    return local.astimezone(timezone.utc)


def due_month(now: datetime, tz: str) -> date | None:
    """The first day of the local month whose report is due at `now` in `tz`, or None."""
    local = now.astimezone(zone(tz))
    at = send_time(local.year, local.month, tz)
    return date(local.year, local.month, 1) if at <= now < at + GRACE else None


def previous_month(month: date) -> Period:
    """The calendar month before the one starting on `month`."""
    end = month - timedelta(days=1)
    return Period(end.replace(day=1), end)


def key(person_id: int, month: date) -> str:
    return KEY.format(person=person_id, month=f"{month:%Y-%m}")


def workspace_tz(session: Session) -> str:
    """The time zone most of the workspace's active people have (the workspace has none of its own)."""
    row = session.execute(select(Person.tz, func.count(Person.id)).where(Person.active, Person.is_bot.is_(False), Person.tz != "")
                          .group_by(Person.tz).order_by(func.count(Person.id).desc(), Person.tz).limit(1)).first()
    return row[0] if row else "UTC"


def referents(session: Session) -> list[Person]:
    return list(session.scalars(select(Person).join(Role, Role.person_id == Person.id)
                                .where(Role.role == "referent", Person.active, Person.is_bot.is_(False))
                                .distinct().order_by(Person.id)))


def due_referents(session: Session, now: datetime) -> list[tuple[int, date]]:
    """(person id, month) of the référents whose report is due now and not sent yet."""
    default_tz: str | None = None  # read only when a référent has no time zone of their own
    wanted: dict[str, tuple[int, date]] = {}
    for person in referents(session):
        if not person.tz and default_tz is None:
            default_tz = workspace_tz(session)
        month = due_month(now, person.tz or default_tz or "UTC")
        if month is not None:
            wanted[key(person.id, month)] = (person.id, month)
    if not wanted:
        return []
    sent = set(session.scalars(select(ProcessedEvent.key).where(ProcessedEvent.key.in_(list(wanted)))))
    return [v for k, v in wanted.items() if k not in sent]


# The job -------------------------------------------------------------------------------------
def run(jctx: JobCtx) -> list[Effect]:
    services, now = jctx.services, jctx.now
    effects: list[Effect] = []
    room = PER_RUN
    for tenant in list(jctx.session.scalars(select(Workspace.id).order_by(Workspace.id))):
        if room <= 0:
            break
        with services.db.session(tenant, readonly=True) as s:
            due = due_referents(s, now)
        for person_id, month in due[:room]:
            try:
                with services.db.session(tenant, readonly=True) as s:  # built from a snapshot: no write turn held meanwhile
                    workspace, person = s.get(Workspace, tenant), s.get(Person, person_id)
                    if workspace is None or person is None:
                        continue
                    dm = build(jctx.acting_as(s, workspace, person), month, now)
                with services.db.session(tenant) as s:  # one short transaction: the claim and the DM, or neither
                    if not claim(s, tenant, key(person_id, month)):
                        continue  # another worker had it
                    if services.deliver is not None:
                        outbox.record(s, [dm], now, source="stats.monthly")
                    else:
                        effects.append(dm)
                room -= 1
            except Exception:  # noqa: BLE001 - one référent's report must not stop the others'; retried next run
                log.exception("stats.monthly: report for person %s (%s) failed", person_id, tenant)
    return effects


def register(r: Registry) -> None:
    r.job(Job("stats.monthly", EVERY, run))


# What ----------------------------------------------------------------------------------------
def scopes_of(session: Session, viewer: Viewer) -> list[Scope]:
    """The scopes of the person's référent roles: channels, departments, sites, languages; a
    workspace-wide référent gets the whole organisation if admin, else each department."""
    out: list[Scope] = []
    for role in session.scalars(select(Role).where(Role.person_id == viewer.person_id, Role.role == "referent").order_by(Role.id)):
        if role.conversation_id is not None:
            scope = Scope("channel", role.conversation_id)
        elif role.scope_kind in analytics.PROFILE_KINDS:
            scope = Scope(role.scope_kind, role.scope_value)
        elif viewer.admin:
            scope = Scope("all")
        else:
            out += [Scope("department", v) for v in analytics.profile_values(session, "department")
                    if Scope("department", v) not in out]
            continue
        if scope not in out and analytics.may_read(session, viewer, scope):
            out.append(scope)
    return out


def label_of(ctx: Ctx, scope: Scope) -> str:
    if scope.kind == "channel":
        conv = ctx.session.get(Conversation, int(scope.value))  # type: ignore[arg-type]
        return f"#{conv.name}" if conv else ctx.t("stats.deleted_channel")
    if scope.kind == "all":
        return ctx.t("stats.scope.all")
    if scope.kind == "language" and str(scope.value) in ("en", "fr"):
        return ctx.t("stats.scope.language", value=ctx.t(f"lang.name.{scope.value}"))
    return ctx.t(f"stats.scope.{scope.kind}", value=scope.value)


@dataclass(frozen=True)
class Where:
    """Which channels a référent's report may name, and whose activity counts there."""

    own: frozenset[int]  # channels the référent holds (any kind)
    public_people: frozenset[int] | None  # people of their organisation scopes in public channels (None: everyone)
    public: bool  # whether public channels count at all (an organisation scope)
    scopes: tuple[Scope, ...] = ()  # the organisation scopes (department, site, language)


def where_of(session: Session, scopes: Sequence[Scope]) -> Where:
    own = frozenset(int(s.value) for s in scopes if s.kind == "channel")  # type: ignore[arg-type]
    org = [s for s in scopes if s.kind != "channel"]
    people: set[int] | None = set()
    for scope in org:
        if scope.kind == "all":
            people = None
            break
        people |= scope_people(session, scope)
    return Where(own, frozenset(people) if people is not None else None, bool(org), tuple(s for s in org if s.kind != "all"))


def people_clause(session: Session, scopes: Sequence[Scope]) -> ColumnElement[bool]:
    """A clause on Person: in one of the department, site or language scopes (see scope_people)."""
    default = (session.scalar(select(Workspace.default_locale).where(Workspace.id == session.info.get("tenant"))) or "en").casefold()
    parts: list[ColumnElement[bool]] = []
    for scope in scopes:
        value = str(scope.value or "").strip().casefold()
        if scope.kind in ("department", "site"):
            column = Person.department if scope.kind == "department" else Person.site
            parts.append(func.lower(func.trim(column)) == value)
        elif scope.kind == "language":
            parts.append(func.lower(func.coalesce(Person.locale, default)) == value)
    return or_(*parts) if parts else false()


def scope_people(session: Session, scope: Scope) -> set[int]:
    """The active people a department, site or language scope is made of (as store.analytics
    defines them: the profile's department or site, any case; the person's language, else the
    workspace's)."""
    query = select(Person.id, Person.locale).where(Person.active, Person.is_bot.is_(False))
    value = str(scope.value or "").strip().casefold()
    if scope.kind in ("department", "site"):
        column = Person.department if scope.kind == "department" else Person.site
        return {pid for pid, _ in session.execute(query.where(func.lower(func.trim(column)) == value))}
    default = (session.scalar(select(Workspace.default_locale).where(Workspace.id == session.info.get("tenant"))) or "en").casefold()
    return {pid for pid, locale in session.execute(query) if (locale or default).casefold() == value}


def _allowed(where: Where, kinds: dict[int, str], conversation_id: int, person_id: int | None) -> bool:
    if conversation_id in where.own:
        return True
    if not where.public or kinds.get(conversation_id) != "public":
        return False  # a private channel is named only to its own référents
    return where.public_people is None or person_id in where.public_people


def movers(session: Session, where: Where, current: Period, before: Period) -> list[tuple[int, int, int]]:
    """(channel, messages this month, messages the month before) of the channels whose count
    moved most, biggest change first (ties: more messages, then the lower id)."""
    kinds = dict(session.execute(select(Conversation.id, Conversation.kind)).all())
    messages = func.sum(ActivityDay.posts + ActivityDay.replies)
    this = case((ActivityDay.day >= current.start, 1), else_=0)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    span = [ActivityDay.day >= before.start, ActivityDay.day <= current.end, ActivityDay.conversation_id != 0]
    if where.own:  # the référent's own channels: everyone's messages there
        for conv, is_this, n in session.execute(
                select(ActivityDay.conversation_id, this, messages).where(*span, ActivityDay.conversation_id.in_(sorted(where.own)))
                .group_by(ActivityDay.conversation_id, this)):
            counts[conv][0 if is_this else 1] += int(n or 0)
    if where.public:  # public channels: the messages of the organisation scopes' people (all of them for "all")
        public = select(Conversation.id).where(Conversation.kind == "public")
        query = (select(ActivityDay.conversation_id, this, messages)
                 .where(*span, ActivityDay.conversation_id.in_(public), ActivityDay.conversation_id.not_in(sorted(where.own)))
                 .group_by(ActivityDay.conversation_id, this))
        if where.public_people is not None:
            query = query.join(Person, Person.id == ActivityDay.person_id).where(Person.active, people_clause(session, where.scopes))
        for conv, is_this, n in session.execute(query):
            counts[conv][0 if is_this else 1] += int(n or 0)
    rolled = set(session.scalars(select(RollupDay.day).where(RollupDay.day >= before.start, RollupDay.day <= current.end)))
    missing = [d for d in (before.start + timedelta(days=i) for i in range((current.end - before.start).days + 1)) if d not in rolled]
    if missing:  # days the roll-up job has not written yet: read live, as a report does
        for (day, conv, person), c in analytics._compute(session, min(missing), max(missing)).items():  # noqa: SLF001
            n = c["posts"] + c["replies"]
            if day in rolled or not n or conv == analytics.NO_CHANNEL or not _allowed(where, kinds, conv, person):
                continue
            if where.public or conv in where.own:
                counts[conv][0 if day >= current.start else 1] += n
    if len(counts) < 2 and len(where.own) < 2 and not where.public:
        return []  # one channel: its figures say it already
    ranked = sorted(((c, now, prev) for c, (now, prev) in counts.items() if now != prev),
                    key=lambda x: (-abs(x[1] - x[2]), -x[1], x[0]))
    return ranked[:MOVERS]


def waiting(session: Session, where: Where, now: datetime) -> tuple[int, int] | None:
    """(channel, count) of the channel with the most help requests still unanswered after WAITED."""
    kinds = dict(session.execute(select(Conversation.id, Conversation.kind)).all())
    found: Counter[int] = Counter()
    for conv, asker in session.execute(select(HelpRequest.conversation_id, HelpRequest.asker_id).where(
            HelpRequest.conversation_id.is_not(None), HelpRequest.answered_at.is_(None), HelpRequest.resolved_at.is_(None),
            HelpRequest.status != "resolved", HelpRequest.created_at < now - WAITED)):
        if _allowed(where, kinds, conv, asker):
            found[conv] += 1
    if not found:
        return None
    conv, count = min(found.items(), key=lambda kv: (-kv[1], kv[0]))
    return conv, count


def dormant(session: Session, channels: Iterable[int], now: datetime) -> tuple[int, int] | None:
    """(channel, idle days) of the référent's own channel idle longest, if DORMANT_DAYS or more."""
    ids = sorted(channels)
    if not ids:
        return None
    last = dict(session.execute(select(Message.conversation_id, func.max(Message.sent_at))
                                .where(Message.conversation_id.in_(ids), Message.deleted.is_(False))
                                .group_by(Message.conversation_id)).all())
    worst: tuple[int, int] | None = None
    for conv in session.scalars(select(Conversation).where(Conversation.id.in_(ids))):
        seen = last.get(conv.id) or conv.created_at
        idle = (now - seen.astimezone(timezone.utc)).days if seen else 0
        if idle >= DORMANT_DAYS and (worst is None or idle > worst[1]):
            worst = (conv.id, idle)
    return worst


def channel_label(session: Session, conversation_id: int) -> str:
    conv = session.get(Conversation, conversation_id)
    return f"#{conv.name}" if conv else "#?"


def action(ctx: Ctx, reports: Sequence[tuple[Scope, str, ScopeReport]], where: Where, now: datetime) -> str:
    """One suggested action: the first rule that applies (module docstring)."""
    low, high = (round(v * 100) for v in analytics.REFERENCE_RATE)
    found = waiting(ctx.session, where, now)
    if found:
        return ctx.t("stats.monthly.action.waiting", channel=channel_label(ctx.session, found[0]), count=found[1],
                     days=WAITED.days)
    idle = dormant(ctx.session, where.own, now)
    if idle:
        return ctx.t("stats.monthly.action.dormant", channel=channel_label(ctx.session, idle[0]), days=idle[1])
    for _scope, label, rep in reports:
        if rep.current.first_timers:
            return ctx.t("stats.monthly.action.first_timers", count=rep.current.first_timers, scope=label)
    rated = [(label, rep.current.rate) for _s, label, rep in reports if rep.current.rate is not None]
    for label, rate in rated:
        if rate < analytics.REFERENCE_RATE[0]:
            return ctx.t("stats.monthly.action.low_rate", scope=label, rate=render.percent(ctx.t, rate), low=low, high=high)
    label, rate = rated[0] if rated else (reports[0][1], None)
    return ctx.t("stats.monthly.action.keep", scope=label, rate=render.percent(ctx.t, rate))


def _points(ctx: Ctx, now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    n = round(now * 100) - round(before * 100)
    if n == 0:
        return ctx.t("stats.change_same")
    return ctx.t("stats.points_up", n=n) if n > 0 else ctx.t("stats.points_down", n=-n)


def scope_section(ctx: Ctx, label: str, rep: ScopeReport) -> tuple[str, str]:
    t, cur, prev, minimum = ctx.t, rep.current, rep.previous, rep.min_group
    low, high = (round(v * 100) for v in analytics.REFERENCE_RATE)
    lines = [
        t("stats.monthly.line.people", contributors=render.count(t, cur.contributors, minimum)
          + render.change(t, cur.contributors, prev.contributors), members=render.count(t, cur.members, minimum),
          rate=render.percent(t, cur.rate), change=_points(ctx, cur.rate, prev.rate), low=low, high=high),
        t("stats.monthly.line.activity", messages=cur.posts + cur.replies,
          change=render.change(t, cur.posts + cur.replies, prev.posts + prev.replies), asked=cur.help_asked,
          answered=cur.help_answered, ideas=cur.ideas, kudos=cur.kudos),
        t("stats.monthly.line.first", value=render.count(t, cur.first_timers, minimum)),
    ]
    return label, "\n".join(lines)


def chart(ctx: Ctx, viewer: Viewer, scope: Scope, label: str, end: date) -> Picture | None:
    try:
        from bot.charts import ChartLabels, render_trend
        points = analytics.weekly_series(ctx.session, viewer, scope, end, CHART_WEEKS)
        if not points:
            return None
        return render_trend(points, title=ctx.plain(label), labels=ChartLabels.of(ctx.translator(ctx.locale)), locale=ctx.locale)
    except Exception:  # noqa: BLE001 - a chart that fails never costs the report
        log.exception("stats.monthly: chart failed")
        return None


def build(ctx: Ctx, month: date, now: datetime) -> Outbound:
    """The référent's report DM for the month before `month` (its first day)."""
    person, session = ctx.actor, ctx.session
    viewer = Viewer(person.id, ctx.is_admin)
    current = previous_month(month)
    before = previous_month(current.start)
    month_name = format_date(current.start, "LLLL y", locale=ctx.locale)
    before_name = format_date(before.start, "LLLL y", locale=ctx.locale)
    to = UserRef(ctx.workspace.platform, ctx.tenant, person.external_id, person.display_name or person.handle)
    anchor = key(person.id, month)
    scopes = scopes_of(session, viewer)
    reports: list[tuple[Scope, str, ScopeReport]] = []
    for scope in scopes:
        rep = analytics.report(session, viewer, scope, current.end, current.days)
        if rep is not None:
            reports.append((scope, label_of(ctx, scope), rep))
    labels = ", ".join(label for _s, label, _r in reports) or ctx.t("stats.scope.all")
    if not reports or all(r.empty for _s, _l, r in reports):
        return Outbound(ctx.reply("stats.monthly.empty", month=month_name, scope=labels), to=to, anchor=anchor)
    sections = [scope_section(ctx, label, rep) for _s, label, rep in reports if not rep.empty]
    where = where_of(session, [s for s, _l, _r in reports])
    moved = movers(session, where, current, before)
    if moved:
        lines = [ctx.t("stats.monthly.mover", channel=channel_label(session, conv), messages=n, before=before_name,
                       change=ctx.t("stats.monthly.up", n=n - p) if n > p else ctx.t("stats.monthly.down", n=p - n))
                 for conv, n, p in moved]
        sections.append((ctx.t("stats.monthly.section.movers"), "\n".join(lines)))
    sections.append((ctx.t("stats.monthly.section.action"), action(ctx, reports, where, now)))
    card = Card(title=ctx.t("stats.monthly.title", month=month_name),
                body=ctx.t("stats.monthly.intro", month=month_name, before=before_name),
                sections=tuple(sections), footer=ctx.t("stats.monthly.footer"))
    first_scope, first_label, first = next((x for x in reports if not x[2].empty), reports[0])
    picture = chart(ctx, viewer, first_scope, first_label, current.end)
    reply = ctx.reply("stats.monthly.report", card=card, picture=picture, month=month_name, scope=labels,
                      contributors=render.count(ctx.t, first.current.contributors, first.min_group))
    return Outbound(reply, to=to, anchor=anchor)


__all__ = ["register", "run", "build", "first_working_day", "send_time", "due_month", "scopes_of", "movers", "action"]
