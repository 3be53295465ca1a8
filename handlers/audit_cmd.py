"""`audit [kind] [period]` (`journal …`): the audit log for admins, and for référents what
concerns their scope (the suggestions and requests routed to them): role changes, access
decisions, suggestion outcomes, anonymous-author look-ups, privacy switches and survey
creations, filtered by kind and period (default 30 days), `audit export …` as CSV."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import norm_token, shorten
from bot.types import Card, IncomingMessage, Reply
from bot.words import parse_duration
from store import referents as store

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
SHOWN = 25
# kind -> (exact actions, action prefixes)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "roles": ((), ("role.",)),
    "access": ((), ("request.",)),
    "suggestions": (("suggestion.answered", "suggestion.done", "suggestion.declined", "suggestion.escalated"), ()),
    "anonymous": (("idea.author_revealed", "suggestion.author_revealed"), ()),
    "privacy": ((), ("privacy.",)),
    "surveys": ((), ("survey.",)),
}
KIND_WORDS = {"roles": "roles", "role": "roles", "roles.": "roles", "access": "access", "acces": "access", "requests": "access",
              "requetes": "access", "suggestions": "suggestions", "suggestion": "suggestions", "anonymous": "anonymous",
              "anonymes": "anonymous", "anonyme": "anonymous", "privacy": "privacy", "confidentialite": "privacy",
              "surveys": "surveys", "survey": "surveys", "sondages": "surveys", "sondage": "surveys"}
PERIOD_WORDS = {"today": 1, "aujourd'hui": 1, "aujourdhui": 1, "week": 7, "semaine": 7, "month": 30, "mois": 30,
                "year": 365, "an": 365, "annee": 365}
_ABOUT = re.compile(r"^(request|suggestion) (\d+)\b")
_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


def _parse(ctx: Ctx, args: str) -> tuple[str | None, int]:
    words = [w for w in args.split() if w]
    kind: str | None = None
    rest: list[str] = []
    for w in words:
        token = norm_token(w)
        if token in KIND_WORDS and kind is None:
            kind = KIND_WORDS[token]
        elif token in PERIOD_WORDS:
            rest.append(f"{PERIOD_WORDS[token]} days")
        else:
            rest.append(w)
    days = DEFAULT_DAYS
    if rest:
        period = parse_duration(" ".join(rest))
        if period is None:
            raise UserError("audit.bad_filter", given=shorten(" ".join(rest), 60), usage=ctx.t("audit.usage"))
        days = max(1, round(period / timedelta(days=1)))
        if days > MAX_DAYS:
            raise UserError("audit.period_too_long", days=days, limit=MAX_DAYS)
    return kind, days


def _entries(ctx: Ctx, args: str) -> tuple[str | None, int, list[tuple[object, str]]]:
    admin = ctx.is_admin
    if not admin and not store.is_referent(ctx.session, ctx.actor):
        ctx.require_role(("referent",), None, "audit.action")
    kind, days = _parse(ctx, args)
    actions, prefixes = KINDS[kind] if kind else ((), ())
    rows = store.audit_entries(ctx.session, ctx.now() - timedelta(days=days), actions, prefixes)
    if not admin:  # a référent: what concerns the suggestions and requests routed to them
        suggestions, requests = store.routed_numbers(ctx.session, ctx.actor.id)
        kept = []
        for row, name in rows:
            m = _ABOUT.match(getattr(row, "detail", "") or "")
            if m and int(m.group(2)) in (suggestions if m.group(1) == "suggestion" else requests):
                kept.append((row, name))
        rows = kept
    return kind, days, rows


def audit_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    kind, days, rows = _entries(ctx, args)
    what = ctx.t(f"audit.kind.{kind}") if kind else ctx.t("audit.kind.all")
    if not rows:
        return ctx.reply("audit.empty", private=True, what=what, days=days)
    tz = ctx.tz()
    lines = [ctx.t("audit.line", when=row.created_at.astimezone(tz), who=name or ctx.t("audit.the_bot"),  # type: ignore[attr-defined]
                   action=row.action, detail=shorten(row.detail, 80))  # type: ignore[attr-defined]
             for row, name in rows[:SHOWN]]
    footer = ctx.t("audit.more", count=len(rows) - SHOWN) if len(rows) > SHOWN else ctx.t("audit.footer")
    card = Card(title=ctx.t("audit.title", what=what, days=days), body="\n".join(lines), footer=footer)
    return ctx.reply("audit.list", private=True, card=card, count=len(rows), what=what, days=days)


def _cell(value: str) -> str:
    """A spreadsheet never runs a cell as a formula."""
    return "'" + value if value.startswith(_CSV_RISKY) else value


def export_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    kind, days, rows = _entries(ctx, args)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["when_utc", "who", "action", "detail"])
    for row, name in rows:
        writer.writerow([row.created_at.isoformat(), _cell(name or "causette"), _cell(row.action), _cell(row.detail)])  # type: ignore[attr-defined]
    ctx.audit("audit.export", f"{kind or 'all'} {days}d {len(rows)} rows")
    name = f"audit-{kind or 'all'}-{ctx.now().date().isoformat()}.csv"
    return ctx.reply("audit.exported", private=True, attachment=(name, out.getvalue().encode("utf-8")), count=len(rows))


def register(r: Registry) -> None:
    r.command(CommandSpec("audit", "journal", audit_command, "audit.help", "audit.usage", aliases=("audit log", "journal d'audit"),
                          group="admin"))
    r.command(CommandSpec("audit export", "journal export", export_command, "audit.export_help", "audit.usage",
                          aliases=("journal exporter",), group="admin"))
