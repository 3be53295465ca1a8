"""`away until <date>` and `back`: experts who are away get no help requests meanwhile."""
from __future__ import annotations

from datetime import timezone

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.types import IncomingMessage, Reply
from bot.words import parse_duration, parse_when, vocabulary
from store import help_requests as store

MAX_DAYS = 366


def away_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """"until 2026-12-01" (or "jusqu'au 1er décembre") means back on the 1st: away until that
    day starts, in your time zone; "dans 2 semaines"/"for 2 weeks" counts from now."""
    words = vocabulary(ctx.services.prompts)
    now = ctx.now()
    until = parse_when(args, now, ctx.tz(), words, lenient=True)
    # "for 2 weeks" / "pendant 2 semaines": a duration after a filler word counts from now.
    spoken = " ".join(w for w, meaning in words.terms(args) if "filler" not in meaning)
    if until is None and (span := parse_duration(spoken, words)) is not None:
        until = (now + span).astimezone(ctx.tz())
    if until is None:
        raise UserError("help_requests.away_date", usage=ctx.t("help_requests.away_usage"))
    day = until.date()
    if until <= now:
        raise UserError("help_requests.away_past", date=day)
    if (until - now).days > MAX_DAYS:
        raise UserError("help_requests.away_too_far", days=MAX_DAYS)
    store.set_away(ctx.session, ctx.actor.id, until.astimezone(timezone.utc), now)
    return ctx.reply("help_requests.away_set", private=True, date=day)


def back_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    if not store.clear_away(ctx.session, ctx.actor.id, ctx.now()):
        return ctx.reply("help_requests.back_not_away", private=True)
    return ctx.reply("help_requests.back", private=True)


def register(r: Registry) -> None:
    r.command(CommandSpec("away", "absent", away_command, "help_requests.away_help", "help_requests.away_usage",
                          aliases=("absente", "away until"), group="help", needs_args=True))
    r.command(CommandSpec("back", "de retour", back_command, "help_requests.back_help", "help_requests.back_usage",
                          aliases=("retour", "i'm back"), group="help"))
