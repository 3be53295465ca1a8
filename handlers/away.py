"""`away until <date>` and `back`: experts who are away get no help requests meanwhile."""
from __future__ import annotations

import re
from datetime import datetime, time, timezone

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.types import IncomingMessage, Reply
from handlers.contribution_common import parse_day
from store import help_requests as store

_DATE = re.compile(r"(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})")
MAX_DAYS = 366


def away_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """"until 2026-12-01" means back on the 1st: away until that day starts, in your time zone."""
    m = _DATE.search(args)
    day = parse_day(m.group(1)) if m else None
    if day is None:
        raise UserError("helpreq.away_date", usage=ctx.t("helpreq.away_usage"))
    until = datetime.combine(day, time(0), tzinfo=ctx.tz()).astimezone(timezone.utc)
    if until <= ctx.now():
        raise UserError("helpreq.away_past", date=day.isoformat())
    if (until - ctx.now()).days > MAX_DAYS:
        raise UserError("helpreq.away_too_far", days=MAX_DAYS)
    store.set_away(ctx.session, ctx.actor.id, until, ctx.now())
    return ctx.reply("helpreq.away_set", private=True, date=day.isoformat())


def back_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    if not store.clear_away(ctx.session, ctx.actor.id, ctx.now()):
        return ctx.reply("helpreq.back_not_away", private=True)
    return ctx.reply("helpreq.back", private=True)


def register(r: Registry) -> None:
    r.command(CommandSpec("away", "absent", away_command, "helpreq.away_help", "helpreq.away_usage",
                          aliases=("absente", "away until"), group="help", needs_args=True))
    r.command(CommandSpec("back", "de retour", back_command, "helpreq.back_help", "helpreq.back_usage",
                          aliases=("retour", "i'm back"), group="help"))
