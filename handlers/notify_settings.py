"""`notifications`, `quiet hours`, `snooze`: each person's real-time ping budget."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot import notifications as notif
from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import norm_token
from bot.types import Card, IncomingMessage, Reply
from store import notifications as queue

MAX_CAP = 100
_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|heures?|d|days?|j|jours?|w|weeks?|semaines?)$")
WEEKDAYS = {
    "monday": 0, "lundi": 0, "tuesday": 1, "mardi": 1, "wednesday": 2, "mercredi": 2, "thursday": 3, "jeudi": 3,
    "friday": 4, "vendredi": 4, "saturday": 5, "samedi": 5, "sunday": 6, "dimanche": 6,
}
OFF_WORDS = {"off", "stop", "non", "no", "aucun", "none", "fin", "end"}


def _budget(ctx: Ctx) -> queue.Budget:
    return queue.budget(ctx.session, ctx.actor.id, ctx.settings.notify_daily_cap, ctx.settings.quiet_hours)


def show(ctx: Ctx) -> Reply:
    b = _budget(ctx)
    now = ctx.now()
    day = notif.local_day_start(ctx.actor, now)
    sent = queue.sent_since(ctx.session, ctx.actor.id, day)
    dms = queue.messages_since(ctx.session, ctx.actor.id, day)
    tz = ctx.actor.tz or "UTC"
    quiet = ctx.t("notify.quiet_off") if (b.quiet_hours or "off") == "off" else b.quiet_hours
    snooze = (
        ctx.t("notify.snoozed_until", when=b.snooze_until.astimezone(ctx.tz()).strftime("%a %d %b %H:%M"))
        if b.snooze_until and b.snooze_until > now else ctx.t("notify.not_snoozed")
    )
    card = Card(
        title=ctx.t("notify.settings_title"),
        fields=(
            (ctx.t("notify.field_cap"), ctx.t("notify.cap_value", cap=b.daily_cap, sent=sent, dms=dms)),
            (ctx.t("notify.field_quiet"), ctx.t("notify.quiet_value", hours=quiet, tz=tz)),
            (ctx.t("notify.field_snooze"), snooze),
            (ctx.t("notify.field_group"), ctx.t("notify.group_value", minutes=ctx.settings.notify_group_minutes)),
        ),
        footer=ctx.t("notify.settings_footer"),
    )
    return ctx.reply("notify.settings", private=True, card=card, cap=b.daily_cap, quiet=quiet, snooze=snooze, sent=sent, dms=dms)


def set_cap(ctx: Ctx, value: str) -> Reply:
    cap = ctx.number_in(value, 0, MAX_CAP)
    if cap is None:
        raise UserError("notify.bad_cap", given=value[:20], max=MAX_CAP)
    queue.settings_for_update(ctx.session, ctx.actor.id).daily_cap = cap
    return ctx.reply("notify.cap_set", private=True, cap=cap)


def set_quiet(ctx: Ctx, value: str) -> Reply:
    value = value.strip()
    try:
        window = notif.parse_quiet_hours(value)
    except ValueError:
        raise UserError("notify.bad_quiet", given=value[:30]) from None
    row = queue.settings_for_update(ctx.session, ctx.actor.id)
    if window is None:
        row.quiet_hours = "off"
        return ctx.reply("notify.quiet_cleared", private=True)
    start, end = window
    row.quiet_hours = f"{start:%H:%M}-{end:%H:%M}"
    return ctx.reply("notify.quiet_set", private=True, hours=row.quiet_hours, tz=ctx.actor.tz or "UTC")


def snooze_until(ctx: Ctx, args: str) -> datetime | None:
    """The end of a snooze from "2h", "30m", "1d", "until monday", "jusqu'à 14:00"; None for "off"."""
    words = [norm_token(w) for w in re.split(r"[\s']+", args.strip()) if w]
    words = [w for w in words if w not in ("until", "jusqu", "jusqua", "a", "to", "for", "pendant", "pour")]
    if not words:
        raise UserError("notify.bad_snooze", given=args[:40])
    if words[0] in OFF_WORDS:
        return None
    now = ctx.now()
    text = " ".join(words)
    m = _DURATION.match(text.replace(" ", "")) or _DURATION.match(text)
    if m:
        n, unit = int(m.group(1)), m.group(2)[0]
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "j": timedelta(days=n),
                 "w": timedelta(weeks=n), "s": timedelta(weeks=n)}[unit]
        if delta <= timedelta(0) or delta > timedelta(days=60):
            raise UserError("notify.bad_snooze", given=args[:40])
        return now + delta
    local = now.astimezone(ctx.tz())
    if words[0] in WEEKDAYS:
        days = (WEEKDAYS[words[0]] - local.weekday()) % 7 or 7
        return (local + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    if words[0] in ("tomorrow", "demain"):
        return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        when = notif._hhmm(words[0])
    except ValueError:
        raise UserError("notify.bad_snooze", given=args[:40]) from None
    target = local.replace(hour=when.hour, minute=when.minute, second=0, microsecond=0)
    return target if target > local else target + timedelta(days=1)


def snooze_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    until = snooze_until(ctx, args)
    row = queue.settings_for_update(ctx.session, ctx.actor.id)
    row.snooze_until = until
    if until is None:
        return ctx.reply("notify.snooze_off", private=True)
    return ctx.reply("notify.snooze_set", private=True, when=until.astimezone(ctx.tz()).strftime("%a %d %b %H:%M"))


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
    raise UserError("notify.bad_subcommand", given=words[0][:30])


def quiet_hours_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return set_quiet(ctx, args)


def register(r: Registry) -> None:
    r.command(CommandSpec("notifications", "notifications", notifications_command, "notify.help", "notify.usage",
                          aliases=("notification settings",), group="social"))
    r.command(CommandSpec("quiet hours", "heures calmes", quiet_hours_command, "notify.quiet_help", "notify.quiet_usage",
                          group="social", needs_args=True))
    r.command(CommandSpec("snooze", "pause", snooze_command, "notify.snooze_help", "notify.snooze_usage",
                          aliases=("sourdine",), group="social", needs_args=True))
    notif.register_jobs(r)
