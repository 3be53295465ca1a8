"""`notifications`, `quiet hours`, `snooze`: each person's real-time ping budget."""
from __future__ import annotations

from datetime import datetime, timedelta

from handlers.notifications import budget as notif
from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import norm_token
from bot.types import Card, IncomingMessage, Reply
from bot.words import parse_duration, parse_quiet_hours, parse_switch, parse_when, vocabulary
from store import notifications as queue

MAX_CAP = 100
DAY_LIMIT = timedelta(days=60)


def _budget(ctx: Ctx) -> queue.Budget:
    return queue.budget(ctx.session, ctx.actor.id, ctx.settings.notify_daily_cap, ctx.settings.quiet_hours)


def show(ctx: Ctx) -> Reply:
    b = _budget(ctx)
    now = ctx.now()
    day = notif.local_day_start(ctx.actor, now)
    sent = queue.sent_since(ctx.session, ctx.actor.id, day)
    dms = queue.messages_since(ctx.session, ctx.actor.id, day)
    tz = ctx.actor.tz or "UTC"
    quiet = ctx.t("notifications.quiet_off") if (b.quiet_hours or "off") == "off" else b.quiet_hours
    snooze = (
        ctx.t("notifications.snoozed_until", when=b.snooze_until.astimezone(ctx.tz()))
        if b.snooze_until and b.snooze_until > now else ctx.t("notifications.not_snoozed")
    )
    card = Card(
        title=ctx.t("notifications.settings_title"),
        fields=(
            (ctx.t("notifications.field_cap"), ctx.t("notifications.cap_value", cap=b.daily_cap, sent=sent, dms=dms)),
            (ctx.t("notifications.field_quiet"), ctx.t("notifications.quiet_value", hours=quiet, tz=tz)),
            (ctx.t("notifications.field_snooze"), snooze),
            (ctx.t("notifications.field_group"), ctx.t("notifications.group_value", minutes=ctx.settings.notify_group_minutes)),
        ),
        footer=ctx.t("notifications.settings_footer"),
    )
    return ctx.reply("notifications.settings", private=True, card=card, cap=b.daily_cap, quiet=quiet, snooze=snooze, sent=sent, dms=dms)


def set_cap(ctx: Ctx, value: str) -> Reply:
    cap = ctx.number_in(value, 0, MAX_CAP)
    if cap is None:
        raise UserError("notifications.bad_cap", given=value[:20], max=MAX_CAP)
    queue.settings_for_update(ctx.session, ctx.actor.id).daily_cap = cap
    return ctx.reply("notifications.cap_set", private=True, cap=cap)


def set_quiet(ctx: Ctx, value: str) -> Reply:
    """"22:00-07:00" sets the window; "off", "non", "disable", "aucun"… clear it."""
    value = value.strip()
    if parse_switch(value, vocabulary(ctx.services.prompts)) is False:
        value = "off"
    try:
        window = parse_quiet_hours(value)
    except ValueError:
        raise UserError("notifications.bad_quiet", given=value[:30]) from None
    row = queue.settings_for_update(ctx.session, ctx.actor.id)
    if window is None:
        row.quiet_hours = "off"
        return ctx.reply("notifications.quiet_cleared", private=True)
    start, end = window
    row.quiet_hours = f"{start:%H:%M}-{end:%H:%M}"
    return ctx.reply("notifications.quiet_set", private=True, hours=row.quiet_hours, tz=ctx.actor.tz or "UTC")


def snooze_until(ctx: Ctx, args: str) -> datetime | None:
    """The end of a snooze from "2h", "30m", "1d", "until monday", "jusqu'à 14:00",
    "jusqu'au 15 décembre"; None for "off"/"non"/"stop"."""
    words = vocabulary(ctx.services.prompts)
    text = " ".join(w for w, meaning in words.terms(args) if not {"until", "filler"} & set(meaning))
    if not text:
        raise UserError("notifications.bad_snooze", given=args[:40])
    if parse_switch(text, words) is False:
        return None
    now = ctx.now()
    span = parse_duration(text, words)
    if span is not None:
        if span > DAY_LIMIT:
            raise UserError("notifications.bad_snooze", given=args[:40])
        return now + span
    when = parse_when(text, now, ctx.tz(), words)
    if when is None or when <= now or when - now > DAY_LIMIT:
        raise UserError("notifications.bad_snooze", given=args[:40])
    return when


def snooze_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    until = snooze_until(ctx, args)
    row = queue.settings_for_update(ctx.session, ctx.actor.id)
    row.snooze_until = until
    if until is None:
        return ctx.reply("notifications.snooze_off", private=True)
    return ctx.reply("notifications.snooze_set", private=True, when=until.astimezone(ctx.tz()))


def notifications_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    words = args.split()
    if not words:
        return show(ctx)
    head = norm_token(words[0])
    rest = " ".join(words[1:])
    if head in ("cap", "plafond", "max", "limit", "limite"):
        return set_cap(ctx, rest.strip())
    if head in ("quiet", "calme", "silence"):
        rest = " ".join(w for w in words[1:] if norm_token(w) not in ("hours", "heures"))
        return set_quiet(ctx, rest)
    if head in ("snooze", "pause"):
        return snooze_command(ctx, msg, rest)
    raise UserError("notifications.bad_subcommand", given=words[0][:30])


def quiet_hours_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return set_quiet(ctx, args)


def register(r: Registry) -> None:
    r.command(CommandSpec("notifications", "notifications", notifications_command, "notifications.help", "notifications.usage",
                          aliases=("notification settings",), group="social"))
    r.command(CommandSpec("quiet hours", "heures calmes", quiet_hours_command, "notifications.quiet_help", "notifications.quiet_usage",
                          group="social", needs_args=True))
    r.command(CommandSpec("snooze", "pause", snooze_command, "notifications.snooze_help", "notifications.snooze_usage",
                          aliases=("sourdine",), group="social", needs_args=True))
    notif.register_jobs(r)
