"""Adoption analytics (issue 15): `stats #channel`, `stats department|site|language <name>`,
`stats all`, `stats me`, `stats export 90d`, `stats dormant`, `stats minimum 5`, `help stats`,
and the daily roll-up job.

Every figure comes from store/analytics.py, which decides who may read which scope and hides
small groups; this package parses, refuses in the reader's language and renders the card
(handlers/stats/render.py). Replies are always private. A `stats <scope>` reply carries the
12-week chart (bot.charts) as its picture."""
from __future__ import annotations

import csv
import io
import logging
from datetime import date, timedelta

from babel.lists import format_list
from sqlalchemy import select

from bot.context import Ctx, JobCtx, UserError
from bot.registry import CommandSpec, Job, Registry
from bot.text import norm_token
from bot.types import Card, Effect, IncomingMessage, Picture, Reply
from bot.words import vocabulary
from handlers.stats import render
from handlers.stats.parse import MAX_DAYS, PeriodError, Request, parse
from store import analytics
from store.analytics import Scope, ScopeNotFound, ScopeReport, Viewer
from store.models.core import Conversation, Workspace

log = logging.getLogger(__name__)
DEFAULT_PERIODS = (7, 28)
EXPORT_DAYS = 90
ROLLUP_EVERY = timedelta(hours=1)
ROLLUP_DAYS_PER_RUN = 60
CHART_WEEKS = 12


def _viewer(ctx: Ctx) -> Viewer:
    return Viewer(ctx.actor.id, ctx.is_admin)


def _today(ctx: Ctx) -> date:
    return ctx.now().date()  # UTC: roll-ups are by UTC day


def _month_words(ctx: Ctx) -> set[str]:
    prompts = ctx.services.prompts
    return {norm_token(w) for lang in ("en", "fr") for w in prompts.t(lang, "stats.words.month").split("|") if w.strip()}


def _request(ctx: Ctx, args: str) -> Request:
    try:
        return parse(args, vocabulary(ctx.services.prompts), _month_words(ctx))
    except PeriodError as error:
        if error.too_long:
            raise UserError("stats.period_too_long", given=error.given[:40], max=12) from None
        raise UserError("stats.period_unknown", given=error.given[:40], usage=ctx.t("stats.usage")) from None


def stats_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    request = _request(ctx, args)
    what = request.what
    if what == "help":
        return definitions(ctx)
    if what == "me":
        return _me(ctx, request)
    if what == "export":
        return _export(ctx, request)
    if what == "dormant":
        return _dormant(ctx)
    if what == "minimum":
        return _minimum(ctx, request)
    if what == "unknown":
        raise UserError("stats.unknown_request", given=request.value[:60], usage=ctx.t("stats.usage"))
    scope, label = _scope(ctx, request)
    return _report(ctx, scope, label, request)


def _scope(ctx: Ctx, request: Request) -> tuple[Scope, str]:
    """The scope asked for and how to name it in the reply."""
    if request.what == "here":
        conv = ctx.conversation
        if conv is None or conv.kind == "dm":
            scopes = analytics.readable_scopes(ctx.session, _viewer(ctx))
            raise UserError("stats.which", usage=ctx.t("stats.usage"), scopes=_scope_list(ctx, scopes))
        return Scope("channel", conv.id), ctx.channel_link(conv)
    if request.what == "channel":
        conv = ctx.find_channel(request.value)
        private_unseen = conv is not None and conv.kind != "public" and not analytics.may_read(
            ctx.session, _viewer(ctx), Scope("channel", conv.id)) and not _member(ctx, conv)
        if conv is None or conv.kind == "dm" or private_unseen:
            typed = request.value.split()[0][:60] if request.value.split() else request.value[:60]
            typed = ctx.plain(typed)
            suggestion = analytics.resolve_channel_name(ctx.session, typed)
            if suggestion:
                raise UserError("stats.unknown_channel_suggest", channel=typed, suggestion="#" + suggestion)
            raise UserError("error.unknown_channel", channel=typed)
        return Scope("channel", conv.id), ctx.channel_link(conv)
    if request.what == "all":
        return Scope("all"), ctx.t("stats.scope.all")
    if not request.value:
        raise UserError("stats.scope_missing", kind=ctx.t(f"stats.kind.{request.what}"), usage=ctx.t("stats.usage"))
    try:
        scope = analytics.resolve_scope(ctx.session, request.what, request.value)
    except ScopeNotFound as missing:
        kind = ctx.t(f"stats.kind.{missing.kind}")
        if missing.suggestion:
            raise UserError("stats.unknown_scope_suggest", kind=kind, given=missing.given[:60],
                            suggestion=missing.suggestion) from None
        raise UserError("stats.unknown_scope", kind=kind, given=missing.given[:60]) from None
    return scope, _scope_label(ctx, scope)


def _member(ctx: Ctx, conv: Conversation) -> bool:
    from store.models.core import ConversationMember
    return ctx.session.scalar(select(ConversationMember.id).where(
        ConversationMember.conversation_id == conv.id, ConversationMember.person_id == ctx.actor.id)) is not None


def _scope_label(ctx: Ctx, scope: Scope) -> str:
    if scope.kind == "channel":
        conv = ctx.session.get(Conversation, int(scope.value))  # type: ignore[arg-type]
        return ctx.channel_link(conv) if conv else ctx.t("stats.deleted_channel")
    if scope.kind == "language":
        return ctx.t("stats.scope.language", value=ctx.t(f"lang.name.{scope.value}") if scope.value in ("en", "fr") else str(scope.value))
    if scope.kind in ("department", "site"):
        return ctx.t(f"stats.scope.{scope.kind}", value=str(scope.value))
    return ctx.t(f"stats.scope.{scope.kind}")


def _scope_list(ctx: Ctx, scopes: list[Scope]) -> str:
    shown = [f"`{_typed(ctx, s)}`" for s in scopes]
    return ", ".join(shown)


def _typed(ctx: Ctx, scope: Scope) -> str:
    """How to type `stats` for this scope in the reader's language."""
    command = ctx.t("stats.command")
    if scope.kind == "channel":
        conv = ctx.session.get(Conversation, int(scope.value))  # type: ignore[arg-type]
        return f"{command} #{conv.name if conv else scope.value}"
    if scope.kind in ("me", "all"):
        return f"{command} {ctx.t(f'stats.word.{scope.kind}')}"
    return f"{command} {ctx.t(f'stats.word.{scope.kind}')} {scope.value}"


def _refuse(ctx: Ctx, scope: Scope, label: str) -> UserError:
    labelled: dict[str, str] = {}
    for person in analytics.who_may_read(ctx.session, scope)[:8]:
        labelled.setdefault(ctx.name(person), ctx.t("stats.role_holder"))
    if not (scope.kind == "channel" and scope.value is not None and _private(ctx, int(scope.value))):
        for admin in ctx.settings.admins:
            labelled.setdefault(admin, ctx.t("role.one.admin"))
    who = [ctx.t("error.person_role", name=name, role=role) for name, role in list(labelled.items())[:8]]
    roles = [ctx.t("role.animator"), ctx.t("role.referent"), ctx.t("role.admin")]
    if scope.kind == "all":
        roles = [ctx.t("role.admin")]
    return UserError("error.not_allowed", action=ctx.t("stats.action_read", scope=label),
                     roles=format_list(roles, style="or", locale=ctx.locale), who=", ".join(who) or ctx.t("error.no_one"))


def _private(ctx: Ctx, conversation_id: int) -> bool:
    conv = ctx.session.get(Conversation, conversation_id)
    return conv is not None and conv.kind != "public"


def _report(ctx: Ctx, scope: Scope, label: str, request: Request) -> Reply:
    viewer = _viewer(ctx)
    if not analytics.may_read(ctx.session, viewer, scope):
        raise _refuse(ctx, scope, label)
    today = _today(ctx)
    periods = (request.days,) if request.days else DEFAULT_PERIODS
    reports = analytics.reports(ctx.session, viewer, scope, today, periods)
    assert reports is not None  # may_read said yes
    if reports[-1].current.too_small:
        return ctx.reply("stats.too_small", private=True, scope=label, min=reports[-1].min_group)
    if all(r.empty for r in reports):
        return ctx.reply("stats.no_activity", private=True, scope=label)
    card = _card(ctx, label, reports, today)
    picture = _chart(ctx, viewer, scope, label, today)
    main = reports[-1]
    return ctx.reply("stats.report", private=True, card=card, picture=picture, scope=label, days=main.current.period.days,
                     contributors=render.count(ctx.t, main.current.contributors, main.min_group),
                     members=render.count(ctx.t, main.current.members, main.min_group))


def _card(ctx: Ctx, label: str, reports: list[ScopeReport], today: date) -> Card:
    t = ctx.t
    main = reports[-1]
    pairs = [(r.current, r.previous) for r in reports]
    sections: list[tuple[str, str]] = []
    if main.empty:
        sections.append((t("stats.section.people"), t("stats.quiet", days=main.current.period.days)))
    sections.append((t("stats.section.people"), render.people_section(t, pairs, main.min_group)))
    help_text, ideas_text = render.activity_section(t, ctx.locale, main.current)
    sections.append((t("stats.section.help", days=main.current.period.days), help_text))
    sections.append((t("stats.section.activity", days=main.current.period.days), ideas_text))
    if main.threads:
        sections.append((t("stats.section.threads"), render.threads_section(t, main, ctx.plain)))
    if main.breakdown and main.breakdown_by:
        label_of = (lambda code: t(f"lang.name.{code}") if code in ("en", "fr") else code) \
            if main.breakdown_by == "language" else (lambda value: value)
        sections.append((t(f"stats.section.by_{main.breakdown_by}"),
                         render.breakdown_section(t, main.breakdown, main.min_group, label_of)))
    footer = t("stats.footer", today=today, min=main.min_group)
    body = t("stats.intro", scope=label, since=main.current.period.start, today=today)
    return Card(title=t("stats.title", scope=label), body=body, sections=tuple(sections), footer=footer)


def _chart(ctx: Ctx, viewer: Viewer, scope: Scope, label: str, today: date) -> Picture | None:
    """The 12-week chart, or None when it cannot be drawn (the reply goes without it)."""
    try:
        from bot.charts import ChartLabels, render_trend
        points = analytics.weekly_series(ctx.session, viewer, scope, today, CHART_WEEKS)
        if not points:
            return None
        t = ctx.translator(ctx.locale)
        return render_trend(points, title=ctx.plain(_chart_title(ctx, scope, label)), labels=ChartLabels.of(t),
                            locale=ctx.locale)
    except Exception:  # noqa: BLE001 - a chart that fails never costs the figures
        log.exception("stats chart failed")
        return None


def _chart_title(ctx: Ctx, scope: Scope, label: str) -> str:
    if scope.kind == "channel":
        conv = ctx.session.get(Conversation, int(scope.value))  # type: ignore[arg-type]
        return f"#{conv.name}" if conv else label
    return label


def _me(ctx: Ctx, request: Request) -> Reply:
    days = request.days or DEFAULT_PERIODS[-1]
    mine = analytics.my_activity(ctx.session, _viewer(ctx), _today(ctx), days)
    if not any(mine.counts.values()) and not any(mine.previous.values()):
        return ctx.reply("stats.me_nothing", private=True, days=days)
    sections = [(ctx.t("stats.section.me", days=days), render.my_section(ctx.t, mine))]
    extra = [ctx.t("stats.me.channels", count=mine.channels)]
    if mine.first_day is not None:
        extra.append(ctx.t("stats.me.first", day=mine.first_day))
    sections.append((ctx.t("stats.section.me_more"), "\n".join(extra)))
    card = Card(title=ctx.t("stats.me_title"), body=ctx.t("stats.me_intro"), sections=tuple(sections),
                footer=ctx.t("stats.me_footer"))
    contributed = sum(mine.counts[k] for k in analytics.CONTRIBUTING)
    return ctx.reply("stats.me", private=True, card=card, days=days, count=contributed)


def _require_admin(ctx: Ctx, action_key: str) -> None:
    if not ctx.is_admin:
        admins = [ctx.t("error.person_role", name=a, role=ctx.t("role.one.admin")) for a in ctx.settings.admins]
        raise UserError("error.not_allowed", action=ctx.t(action_key), roles=ctx.t("role.admin"),
                        who=", ".join(admins) or ctx.t("error.no_one"))


def _export(ctx: Ctx, request: Request) -> Reply:
    _require_admin(ctx, "stats.action_export")
    days = request.days or EXPORT_DAYS
    rows = analytics.export_rows(ctx.session, _viewer(ctx), _today(ctx), days)
    assert rows is not None
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(analytics.EXPORT_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    content = "\ufeff".encode("utf-8") + buffer.getvalue().encode("utf-8")  # BOM: Excel reads accents right
    name = f"causette-stats-{days}d-{_today(ctx).isoformat()}.csv"
    ctx.audit("stats.export", f"{days}d {len(rows)} rows")
    return ctx.reply("stats.exported", private=True, attachment=(name, content), count=len(rows), days=days)


def _dormant(ctx: Ctx) -> Reply:
    _require_admin(ctx, "stats.action_dormant")
    found = analytics.dormant_channels(ctx.session, _viewer(ctx), _today(ctx)) or []
    if not found:
        return ctx.reply("stats.dormant_none", private=True, days=analytics.DORMANT_STEPS[0])
    sections = []
    steps = sorted(analytics.DORMANT_STEPS, reverse=True)
    for i, step in enumerate(steps):
        upper = steps[i - 1] if i else None
        group = [d for d in found if d.idle_days >= step and (upper is None or d.idle_days < upper)]
        if not group:
            continue
        lines = [ctx.t("stats.dormant_line", channel="#" + d.name, days=d.idle_days,
                       last=d.last_post if d.last_post else ctx.t("stats.never"), members=d.members)
                 for d in group[:25]]
        if len(group) > 25:
            lines.append(ctx.t("stats.breakdown_more", count=len(group) - 25))
        sections.append((ctx.t("stats.dormant_step", days=step), "\n".join(lines)))
    card = Card(title=ctx.t("stats.dormant_title"), body=ctx.t("stats.dormant_intro"), sections=tuple(sections),
                footer=ctx.t("stats.dormant_footer"))
    return ctx.reply("stats.dormant", private=True, card=card, count=len(found))


def _minimum(ctx: Ctx, request: Request) -> Reply:
    low, high = analytics.MIN_GROUP_RANGE
    if not request.value:
        return ctx.reply("stats.minimum_is", private=True, min=analytics.min_group(ctx.session), low=low, high=high)
    _require_admin(ctx, "stats.action_minimum")
    value = Ctx.number_in(request.value.split()[0], low, high)
    if value is None:
        raise UserError("stats.minimum_range", given=request.value[:20], low=low, high=high)
    analytics.set_min_group(ctx.session, ctx.tenant, value, ctx.actor.id, ctx.now())
    ctx.audit("stats.minimum", str(value))
    return ctx.reply("stats.minimum_set", private=True, min=value)


def definitions(ctx: Ctx) -> Reply:
    keys = ("members", "contributors", "rate", "reactors_only", "silent", "first_timers", "help", "ideas", "kudos",
            "threads", "periods", "privacy", "private", "today")
    low, high = (round(v * 100) for v in analytics.REFERENCE_RATE)
    lines = [ctx.t(f"stats.define.{k}", min=analytics.min_group(ctx.session), low=low, high=high, max=12) for k in keys]
    card = Card(title=ctx.t("stats.define_title"), body="\n".join(lines), fields=((ctx.t("help.usage"), ctx.t("stats.usage")),))
    return ctx.reply("stats.definitions", private=True, card=card)


def help_stats_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return definitions(ctx)


# The roll-up job -----------------------------------------------------------------------------
def rollup_job(jctx: JobCtx) -> list[Effect]:
    """Every hour: each workspace's days not rolled up yet (before today, UTC), newest first,
    at most ROLLUP_DAYS_PER_RUN a run, each in its own short transaction. A day is claimed by
    its `analytics_rollups` row (store.analytics.rollup_day), so workers never count it twice."""
    today = jctx.now.date()
    tenants = list(jctx.session.scalars(select(Workspace.id)))
    db = jctx.services.db
    for tenant in tenants:
        with db.session(tenant, readonly=True) as s:
            days = analytics.pending_days(s, today)
        for day in sorted(days, reverse=True)[:ROLLUP_DAYS_PER_RUN]:
            with db.session(tenant) as s:
                analytics.rollup_day(s, tenant, day)
    return []


def register(r: Registry) -> None:
    r.command(CommandSpec("stats", "statistiques", stats_command, "stats.help", "stats.usage",
                          aliases=("statistics", "stat", "analytics"), group="general"))
    r.command(CommandSpec("help stats", "aide stats", help_stats_command, "stats.define_help", "stats.define_usage",
                          aliases=("stats help", "stats aide", "aide statistiques", "help statistics",
                                   "statistiques aide"), hidden=True, group="general"))
    r.job(Job("analytics.rollup", ROLLUP_EVERY, rollup_job))
    __import__("handlers.stats.monthly", fromlist=["register"]).register(r)  # the monthly référent report (its own file)
    __import__("handlers.stats.glance", fromlist=["register"]).register(r)  # at a glance: App Home, Teams personal card


__all__ = ["register", "stats_command", "rollup_job", "definitions", "MAX_DAYS"]
