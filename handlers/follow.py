"""follow / unfollow / subscribe / unsubscribe, following, followers."""
from __future__ import annotations

import re

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import MARK_OPEN, extract_hashtags, topic_key
from bot.types import Card, IncomingMessage, Reply
from store import social
from store.models.core import Person
from store.models.social import Topic

_TOPIC_WORD = re.compile(r"(?<![\w" + MARK_OPEN + r"])#([^\s#]+)")


def _targets(ctx: Ctx, args: str) -> tuple[list[Person], list[Topic], list[str]]:
    """People (mentions / @handles) and topics (#tags, created on first follow) in `args`."""
    people, missing = ctx.find_people(args)
    if missing:
        raise UserError("error.unknown_person", who=", ".join(missing))
    tags = list(extract_hashtags(args))
    raw = [m.group(1) for m in _TOPIC_WORD.finditer(args)]
    bad = [t for t in raw if not any(topic_key(t) == topic_key(x) for x in tags)]
    if bad:
        raise UserError("social.bad_topic", tag="#" + bad[0][:40])
    topics: list[Topic] = []
    ids = social.topics_for(ctx.session, ctx.tenant, tags, ctx.now())
    for tag in tags:
        topic = ctx.session.get(Topic, ids[topic_key(tag)])
        if topic is not None and topic not in topics:
            topics.append(topic)
    if not people and not topics:
        raise UserError("social.follow_what")
    if ctx.actor in people:
        raise UserError("social.follow_self")
    return people, topics, [ctx.name(p) for p in people] + ["#" + t.label for t in topics]


def _follow(ctx: Ctx, args: str, level: str) -> Reply:
    people, topics, names = _targets(ctx, args)
    # Written in one order whatever the typed order (people by platform id, then topics by key):
    # "follow @a @b" and "follow @b @a" from one person at once would otherwise each wait on
    # PostgreSQL for the row the other inserted first (a deadlock). The reply keeps the typed order.
    people = sorted(people, key=lambda p: p.external_id)
    topics = sorted(topics, key=lambda t: t.key)
    results = [social.follow(ctx.session, ctx.actor, person=p, level=level, now=ctx.now()) for p in people]
    results += [social.follow(ctx.session, ctx.actor, topic=t, level=level, now=ctx.now()) for t in topics]
    key = "social.subscribed" if level == "subscribe" else "social.followed"
    if all(r == "same" for r in results):
        key += "_already"
    return ctx.reply(key, private=True, targets=", ".join(names))


def follow_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return _follow(ctx, args, "follow")


def subscribe_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return _follow(ctx, args, "subscribe")


def unfollow_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    people, topics, names = _targets(ctx, args)
    changed = [social.unfollow(ctx.session, ctx.actor, person=p) for p in people]
    changed += [social.unfollow(ctx.session, ctx.actor, topic=t) for t in topics]
    if not any(changed):
        raise UserError("social.not_following", targets=", ".join(names))
    return ctx.reply("social.unfollowed", private=True, targets=", ".join(names))


def unsubscribe_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    people, topics, names = _targets(ctx, args)
    changed = [social.unfollow(ctx.session, ctx.actor, person=p, level="follow") for p in people]
    changed += [social.unfollow(ctx.session, ctx.actor, topic=t, level="follow") for t in topics]
    if not any(changed):
        raise UserError("social.not_subscribed", targets=", ".join(names))
    return ctx.reply("social.unsubscribed", private=True, targets=", ".join(names))


def following_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    rows = social.following(ctx.session, ctx.actor)
    if not rows:
        return ctx.reply("social.following_none", private=True)
    people = [ctx.name(p) + (" 🔔" if f.level == "subscribe" else "") for f, p, _ in rows if p is not None]
    topics = ["#" + t.label + (" 🔔" if f.level == "subscribe" else "") for f, _, t in rows if t is not None]
    fields = []
    if people:
        fields.append((ctx.t("social.field_people"), ", ".join(people)))
    if topics:
        fields.append((ctx.t("social.field_topics"), ", ".join(topics)))
    card = Card(title=ctx.t("social.following_title"), fields=tuple(fields), footer=ctx.t("social.following_footer"))
    return ctx.reply("social.following", private=True, card=card, count=len(rows))


def followers_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """Your own followers by name, to you only; anyone else's as a count."""
    people, missing = ctx.find_people(args)
    if missing:
        raise UserError("error.unknown_person", who=", ".join(missing))
    target = people[0] if people else ctx.actor
    if target.id != ctx.actor.id:
        count = social.follower_count(ctx.session, person=target)
        return ctx.reply("social.followers_count", private=True, name=ctx.name(target), count=count)
    rows = social.followers(ctx.session, ctx.actor)
    if not rows:
        return ctx.reply("social.followers_none", private=True)
    card = Card(title=ctx.t("social.followers_title", count=len(rows)),
                body=", ".join(ctx.name(p) for p, _ in rows), footer=ctx.t("social.followers_footer"))
    return ctx.reply("social.followers", private=True, card=card, count=len(rows))


def register(r: Registry) -> None:
    g = "social"
    r.command(CommandSpec("follow", "suivre", follow_command, "social.follow_help", "social.follow_usage", group=g,
                          needs_args=True))
    r.command(CommandSpec("unfollow", "ne plus suivre", unfollow_command, "social.unfollow_help", "social.unfollow_usage",
                          group=g, needs_args=True))
    r.command(CommandSpec("subscribe", "s'abonner", subscribe_command, "social.subscribe_help", "social.subscribe_usage",
                          aliases=("abonner", "sabonner"), group=g, needs_args=True))
    r.command(CommandSpec("unsubscribe", "se désabonner", unsubscribe_command, "social.unsubscribe_help",
                          "social.unsubscribe_usage", aliases=("désabonner",), group=g, needs_args=True))
    r.command(CommandSpec("following", "abonnements", following_command, "social.following_help", group=g,
                          aliases=("je suis",)))
    r.command(CommandSpec("followers", "abonnés", followers_command, "social.followers_help", "social.followers_usage",
                          group=g))
