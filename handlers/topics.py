"""`topic #pricing`: who contributes, how many follow, recent posts, related topics, and the
animators of the channels where the topic lives: all from what the asker may read."""
from __future__ import annotations

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import extract_hashtags
from bot.types import Action, Card, IncomingMessage, Reply
from handlers.social_index import readable_text
from store import social


def topic_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    tags = extract_hashtags(args if args.lstrip().startswith("#") else "#" + args.strip())
    if not tags:
        raise UserError("topic.which")
    tag = tags[0]
    topic = social.topic_by_tag(ctx.session, tag)
    card_data = social.topic_card(ctx.session, ctx.actor, topic) if topic is not None else None
    if topic is None or card_data is None:
        raise UserError("topic.unknown", tag="#" + tag)
    none = ctx.t("topic.none")
    contributors = ", ".join(f"{ctx.name(p)} ({score:g})" for p, score in card_data.contributors) or none
    channels = ", ".join(f"#{c.name} ({n})" for c, n in card_data.channels) or none
    related = ", ".join(f"#{label} ({n})" for label, n in card_data.related) or none
    animators = ", ".join(f"{ctx.name(p)} (#{c.name})" for p, c in card_data.animators) or none
    recent = "\n".join(
        ctx.t("topic.post_line", author=ctx.name(p) if p else ctx.t("feed.someone"), channel="#" + c.name,
              snippet=readable_text(ctx, m.text, 160), link=m.permalink)
        for m, p, c in card_data.recent
    ) or none
    label = card_data.topic.label
    card = Card(
        title="#" + label,
        fields=(
            (ctx.t("topic.field_contributors"), contributors),
            (ctx.t("topic.field_followers"), str(card_data.followers)),
            (ctx.t("topic.field_channels"), channels),
            (ctx.t("topic.field_animators"), animators),
            (ctx.t("topic.field_related"), related),
        ),
        sections=((ctx.t("topic.recent"), recent),),
        actions=(Action(ctx.t("topic.follow_button"), f"follow #{label}"),
                 Action(ctx.t("topic.subscribe_button"), f"subscribe #{label}")),
    )
    return ctx.reply("topic.card", private=True, card=card, tag="#" + label, followers=card_data.followers)


def register(r: Registry) -> None:
    r.command(CommandSpec("topic", "sujet", topic_command, "topic.help", "topic.usage", aliases=("thème", "theme", "hashtag"),
                          group="social", needs_args=True))
