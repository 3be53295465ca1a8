"""Kudos: `thanks @someone <reason> [#skill]`. A public card, a DM to each recipient (within
their notification budget), expertise evidence for #skills, with reciprocal thanks between
the same two people counting less, one thank-you per recipient a day, and a leaderboard
answered privately that names without pinging and counts only the thanks its reader may read."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Sequence

from bot.context import Ctx, UserError
from handlers.expertise.lookup import track_changes
from handlers.notifications.budget import notify
from bot.registry import CommandSpec, Registry
from bot.text import extract_hashtags, one_line
from bot.types import Card, Effect, IncomingMessage, Reply
from handlers.contribution_common import actor_day_start, join_topics, strip_people
from store import kudos as store
from store import people as people_store
from store.expertise import add_evidence
from store.models.core import Person

RECIPROCITY_WINDOW = timedelta(days=30)
RECIPROCAL_WEIGHT = 0.5
REASON_MIN = 3
REASON_MAX = 500
_TAG = re.compile(r"(?<![\w&/])#[^\s#]+")
_LEAD = re.compile(r"^\s*(?:for|pour|because|car|,|:|—|-|and|et)+\s+", re.IGNORECASE)
PERIODS = {"week": 7, "semaine": 7, "month": 30, "mois": 30, "all": None, "tout": None, "toujours": None}


def parse_reason(args: str) -> str:
    """What is left once people and #skills are taken out: "@a @b for the demo #sql" → "the demo"."""
    text = _TAG.sub(" ", strip_people(args))
    text = one_line(text)
    previous = None
    while previous != text:
        previous, text = text, _LEAD.sub("", text)
    return text.strip(" ,:;—-")


def give(
    ctx: Ctx,
    recipients: Sequence[Person],
    reason: str,
    skills: Sequence[str],
    *,
    help_request_id: int | None = None,
) -> list[Effect]:
    """Record kudos to each recipient and build the card (public, in the thread of the message
    being handled) and DMs. Raises UserError on refusal."""
    if not recipients:
        raise UserError("kudos.who", usage=ctx.t("kudos.usage"))
    if any(p.id == ctx.actor.id for p in recipients):
        raise UserError("kudos.self")
    bots = [p for p in recipients if p.is_bot]
    if bots:
        raise UserError("kudos.bot", name=ctx.name(bots[0]))
    if len(reason) < REASON_MIN:
        raise UserError("kudos.reason_required", usage=ctx.t("kudos.usage"))
    if len(reason) > REASON_MAX:
        raise UserError("kudos.reason_too_long", limit=REASON_MAX, length=len(reason))
    allowance = ctx.settings.kudos_daily_allowance
    used = store.given_since(ctx.session, ctx.actor.id, actor_day_start(ctx))
    if used + len(recipients) > allowance:
        raise UserError("kudos.allowance", allowance=allowance, left=max(0, allowance - used))
    day = ctx.now().astimezone(ctx.tz()).date()
    already = [p for p in recipients if p.id in store.thanked_on(ctx.session, ctx.actor.id, day)]
    if already:
        raise UserError("kudos.already_today", names=", ".join(ctx.name(p) for p in already))
    now = ctx.now()
    conv = ctx.conversation
    shareable = conv is not None and conv.kind != "dm"
    skills = list(dict.fromkeys(s.lstrip("#") for s in skills if s.strip("#")))[:5]
    evidence = False
    for person in recipients:
        reciprocal = store.received_from(ctx.session, ctx.actor.id, person.id, now - RECIPROCITY_WINDOW)
        weight = RECIPROCAL_WEIGHT if reciprocal else 1.0
        try:
            row = store.add(ctx.session, giver_id=ctx.actor.id, recipient_id=person.id, reason=reason, skills=join_topics(skills),
                            conversation_id=conv.id if conv else None, weight=weight, now=now, day=day,
                            help_request_id=help_request_id)
        except store.AlreadyThanked:  # the same thanks sent twice at once: the other one counted
            raise UserError("kudos.already_today", names=ctx.name(person)) from None
        for skill in skills:
            # Evidence without a conversation is readable by everyone: a DM's thanks keep no text.
            evidence |= add_evidence(ctx.session, ctx.tenant, person.id, skill, "kudos", now, weight=weight,
                                     source_ref=f"kudos:{row.id}", conversation_id=conv.id if shareable and conv else None,
                                     snippet=reason if shareable else "")
    if evidence:
        track_changes(ctx)
    names = ", ".join(ctx.mention(p) for p in recipients)
    tags = " ".join("#" + s for s in skills)
    tr = ctx.translator(ctx.locale_in(ctx.conversation))  # the public card: the channel's language
    card = Card(title=tr("kudos.card_title", giver=ctx.name(ctx.actor)), body=tr("kudos.card_body", names=names, reason=reason),
                fields=((tr("kudos.field.skills"), tags),) if skills else (), footer=tr("kudos.card_footer"))
    public = Reply(text=tr("kudos.card", giver=ctx.name(ctx.actor), names=names, reason=reason), card=card, key="kudos.card",
                   params={"count": len(recipients)})
    effects: list[Effect] = [ctx.answer(public)]
    for person in recipients:
        effects += notify(ctx, person, "kudos.notify.received",
                          params={"giver": ctx.name(ctx.actor), "reason": reason, "skills": tags},
                          thread_key=f"kudos:{ctx.actor.id}:{person.id}:{now.isoformat()}")
    return effects


def thanks_the_bot(msg: IncomingMessage, args: str) -> bool:
    """Whether the bot's own mention stood among those thanked (`thanks @causette for the help`,
    `thanks @bob and @causette for the demo`), not before the command (`@causette thanks @bob`,
    `hey @causette, thanks @bob`) nor after the whole of it (`thanks @bob for the help @causette`).
    Adapters remove that mention, so the command's arguments never show it (`bot.addressing`)."""
    at = msg.bot_mention_at
    if at is None or not msg.text[:at].strip():
        return False
    after = msg.text[at:]
    if args and args.strip() in after:  # the command followed the mention
        return False
    return not args or bool(after.strip(" \t\n,;:!?.…"))


def thanks_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    if thanks_the_bot(msg, args):
        raise UserError("kudos.bot", name=ctx.settings.command_name.lstrip("/") or "causette")
    if not args.strip():
        raise UserError("error.missing_argument", usage=ctx.t("kudos.usage"))
    people, missing = ctx.find_people(args)
    if missing:
        raise UserError("error.unknown_person", who=", ".join(missing))
    return give(ctx, people, parse_reason(args), extract_hashtags(args))


def top_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """Looking is private: the leaderboard is answered to the asker alone, counting what they
    may read (there is no option to post it for everyone)."""
    word = args.split()[0].casefold() if args.split() else "month"
    if word not in PERIODS:
        raise UserError("kudos.period_unknown", given=args[:30], usage=ctx.t("kudos.top_usage"))
    days = PERIODS[word]
    since = ctx.now() - timedelta(days=days) if days else None
    rows = store.top(ctx.session, since, reader_id=ctx.actor.id, shown_in=None)  # the reader alone sees it
    period = ctx.t(f"kudos.period.{'all' if days is None else 'week' if days == 7 else 'month'}")
    if not rows:
        return ctx.reply("kudos.top_empty", private=True, period=period)
    people = people_store.people_by_ids(ctx.session, [pid for pid, _ in rows])
    lines = [ctx.t("kudos.top_line", rank=i, name=ctx.name(people[pid]), count=n)
             for i, (pid, n) in enumerate(rows, 1) if pid in people]
    card = Card(title=ctx.t("kudos.top_title", period=period), body="\n".join(lines))
    return ctx.reply("kudos.top", private=True, card=card, period=period, count=len(lines))


def register(r: Registry) -> None:
    r.command(CommandSpec("thanks", "merci", thanks_command, "kudos.help", "kudos.usage", aliases=("kudos", "thank", "bravo"),
                          group="kudos"))  # arguments checked by the handler: the bot's mention leaves none
    r.command(CommandSpec("kudos top", "merci top", top_command, "kudos.top_help", "kudos.top_usage",
                          aliases=("kudos classement", "thanks top"), group="kudos"))
