"""At a glance (issue 15, deliverable 4): an animator's or référent's channels in one card —
members, contributors over the last 28 days, participation rate, help requests still waiting
for an answer — as a neutral core reply.

`glance_card(ctx)` builds the Card (None for someone who holds no channel); the `glance`
command (`aperçu`, `my channels`, `mes canaux`) answers it privately. Slack's App Home runs that
command for the person and shows the card (adapters/slack/home.py; nothing is shown there for
someone without channels); on Teams it is the card the command answers in the personal chat.
Figures come from store.analytics.report, which checks who may read each channel and hides
groups under the minimum size.
"""
from __future__ import annotations

from sqlalchemy import func, select

from bot.context import Ctx
from bot.registry import CommandSpec, Registry
from bot.types import Card, IncomingMessage, Reply
from handlers.stats import render
from store import analytics
from store.analytics import Scope, Viewer
from store.models.contribution import HelpRequest
from store.models.core import Conversation, Role

DAYS = 28
MAX_CHANNELS = 10
ROLES = ("animator", "referent")


def channels_of(ctx: Ctx) -> list[Conversation]:
    """The channels the actor animates or is référent of, by name (at most MAX_CHANNELS)."""
    held = select(Role.conversation_id).where(Role.person_id == ctx.actor.id, Role.role.in_(ROLES))
    return list(ctx.session.scalars(
        select(Conversation).where(Conversation.id.in_(held), Conversation.kind != "dm")
        .order_by(func.lower(Conversation.name), Conversation.id).limit(MAX_CHANNELS)))


def unanswered(ctx: Ctx, conversation_id: int) -> int:
    """Help requests asked in the channel that nobody has answered yet."""
    return int(ctx.session.scalar(select(func.count(HelpRequest.id)).where(
        HelpRequest.conversation_id == conversation_id, HelpRequest.answered_at.is_(None),
        HelpRequest.resolved_at.is_(None), HelpRequest.status != "resolved")) or 0)


def glance_card(ctx: Ctx) -> Card | None:
    channels = channels_of(ctx)
    if not channels:
        return None
    viewer = Viewer(ctx.actor.id, ctx.is_admin)
    today = ctx.now().date()
    lines = []
    for conv in channels:
        rep = analytics.report(ctx.session, viewer, Scope("channel", conv.id), today, DAYS)
        if rep is None:
            continue
        cur, minimum = rep.current, rep.min_group
        lines.append(ctx.t("stats.glance.line", channel=ctx.channel_link(conv), members=render.count(ctx.t, cur.members, minimum),
                           contributors=render.count(ctx.t, cur.contributors, minimum), rate=render.percent(ctx.t, cur.rate),
                           days=DAYS, count=unanswered(ctx, conv.id)))
    if not lines:
        return None
    low, high = (round(v * 100) for v in analytics.REFERENCE_RATE)
    return Card(title=ctx.t("stats.glance.title"), body="\n".join(lines),
                footer=ctx.t("stats.glance.footer", low=low, high=high))


def glance_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    card = glance_card(ctx)
    if card is None:
        return ctx.reply("stats.glance.none", private=True)
    return ctx.reply("stats.glance.reply", private=True, card=card, count=card.body.count("\n") + 1)


def register(r: Registry) -> None:
    r.command(CommandSpec("glance", "aperçu", glance_command, "stats.glance.help", "stats.glance.usage",
                          aliases=("at a glance", "my channels", "mes canaux", "apercu", "en un coup d'oeil"), group="general"))


__all__ = ["register", "glance_card", "glance_command", "channels_of"]
