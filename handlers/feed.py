"""`feed`: the latest posts from followed people and topics, newest first, privately, with
a "More" button and links back to the original messages."""
from __future__ import annotations

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.types import Action, Card, IncomingMessage, Reply
from handlers.social_index import readable_text
from store import social

PAGE_SIZE = 5
MAX_PAGE = 50


def feed_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    words = args.split()
    page = 1
    if words:
        number = ctx.number_in(words[-1], 1, MAX_PAGE)
        if number is None:
            raise UserError("feed.bad_page", given=words[-1][:20], max=MAX_PAGE)
        page = number
    items, more = social.feed(ctx.session, ctx.actor, page=page, size=PAGE_SIZE)
    if not items:
        if not social.following(ctx.session, ctx.actor):
            return ctx.reply("feed.no_follows", private=True)
        return ctx.reply("feed.empty" if page == 1 else "feed.no_more", private=True)
    tz = ctx.tz()
    sections = []
    for item in items:
        heading = ctx.t(
            "feed.item_heading",
            author=item.author or ctx.t("feed.someone"),
            channel="#" + item.channel,
            when=item.sent_at.astimezone(tz),
        )
        body = readable_text(ctx, item.text, 300)
        if item.permalink:
            body += "\n" + ctx.t("feed.link", link=item.permalink)
        sections.append((heading, body))
    actions = (Action(ctx.t("feed.more"), f"feed {page + 1}"),) if more else ()
    card = Card(title=ctx.t("feed.title", page=page), sections=tuple(sections), actions=actions,
                footer=ctx.t("feed.footer"))
    return ctx.reply("feed.page", private=True, card=card, count=len(items), page=page)


def register(r: Registry) -> None:
    r.command(CommandSpec("feed", "fil", feed_command, "feed.help", "feed.usage", aliases=("news", "actu", "fil d'actu"),
                          group="social"))
