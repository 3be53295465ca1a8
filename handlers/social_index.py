"""Ambient indexing: every channel message the bot sees (addressed or not) feeds the message
index, topics, mentions and expertise evidence; edits re-index, deletions remove, reactions
count. Live posts ping their subscribers; backfilled ones never do. Also history backfill:
`index history #channel 90d` and the bot joining a channel."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete

from bot.context import Ctx, UserError
from handlers.notifications.budget import notify
from bot.registry import CommandSpec, Registry
from bot.text import extract_hashtags, norm_key, sanitize, shorten, strip_markers
from bot.unit import deferring
from bot.types import (
    Effect,
    FetchHistory,
    IncomingMessage,
    MembersChanged,
    MessageDeleted,
    MessageEdited,
    Outbound,
    ReactionAdded,
    UserRef,
)
from store import people as people_store
from store import social
from store.models.core import ConversationMember, Person

INDEXED_VIA = ("message", "mention")
THANKS = re.compile(r"\b(merci|thanks|thank you|thx|cheers|bravo|kudos)\b")
DEFAULT_BACKFILL_DAYS = 90
MAX_BACKFILL_DAYS = 365
_DAYS = re.compile(r"\b(\d{1,3})\s*(d|j|days?|jours?)\b", re.IGNORECASE)


def indexable(ctx: Ctx, sender: UserRef) -> bool:
    """The privacy contract's first rule: only non-DM conversations the bot is in, with
    indexing on, written by people who did not opt out."""
    conv = ctx.conversation
    if conv is None or conv.kind == "dm" or not conv.indexing or not conv.bot_member:
        return False
    if sender.is_bot or ctx.actor.is_bot:
        return False
    refused = people_store.event_opt_out(ctx.session, ctx.tenant, ctx.actor.id)  # read with the event's rows
    if refused is None:
        refused = bool(social.opted_out(ctx.session, [ctx.actor.id]))
    return not refused


def mention_ids(ctx: Ctx, mentions: tuple[UserRef, ...]) -> tuple[int, ...]:
    """The mentioned people's ids, in mention order, the people the bot has not seen yet
    created in platform-id order (see `people_in_order`)."""
    people = people_in_order(ctx, mentions)
    ids: list[int] = []
    for ref in mentions:
        person = people[ref.id]
        if not person.is_bot and person.id not in ids:
            ids.append(person.id)
    return tuple(ids)


def people_in_order(ctx: Ctx, refs: tuple[UserRef, ...]) -> dict[str, Person]:
    """Each of `refs` as stored (created on first sight), by platform id, written in
    platform-id order: two events naming the same new people in opposite orders would
    otherwise each wait on PostgreSQL for the row the other wrote first (a deadlock)."""
    people: dict[str, Person] = {}
    for ref in sorted(refs, key=lambda r: r.id):
        if ref.id not in people:
            people[ref.id] = people_store.upsert_person(ctx.session, ref, ctx.now())
    return people


def post_of(ctx: Ctx, external_id: str, text: str, hashtags: tuple[str, ...], mentions: tuple[UserRef, ...],
            *, sent_at=None, permalink: str = "", thread: str | None = None) -> social.Post:  # type: ignore[no-untyped-def]
    assert ctx.conversation is not None
    ids = mention_ids(ctx, mentions)
    return social.Post(
        conversation_id=ctx.conversation.id, external_id=external_id, author_id=ctx.actor.id, text=text,
        sent_at=sent_at or ctx.now(), permalink=permalink, thread_external_id=thread,
        hashtags=hashtags or extract_hashtags(text), mention_ids=ids,
        thanked=bool(ids) and THANKS.search(norm_key(text)) is not None,
    )


def on_message(ctx: Ctx, msg: IncomingMessage) -> list[Effect]:
    if msg.addressed and msg.via not in INDEXED_VIA:
        return []
    if not indexable(ctx, msg.sender):
        return []
    thread = msg.thread_id or msg.conversation.thread_id
    post = post_of(ctx, msg.id, msg.text, msg.hashtags, msg.mentions, sent_at=msg.sent_at, permalink=msg.permalink,
                   thread=thread)
    if deferring() and (msg.backfill or not social.any_subscriber(ctx.session, ctx.tenant)):
        # No ping can follow: written with the inbox batch's other posts, in one statement.
        social.ingest_later(ctx.session, ctx.tenant, post, ctx.now())
        return []
    done = social.ingest(ctx.session, ctx.tenant, [post], ctx.now())
    if not done or msg.backfill:
        return []
    return ping_subscribers(ctx, done[0], thread or msg.id)


def readable_text(ctx: Ctx, text: str, limit: int) -> str:
    """A snippet with mention markers turned into plain names, so quoting never pings."""
    ids = set(re.findall(r"\u27e6@([^\u27e7]+)\u27e7", text))
    names = {}
    for ext in ids:
        person = people_store.find_person(ctx.session, ext)
        names[ext] = ctx.name(person) if person else ext
    return shorten(strip_markers(text, names), limit)


def ping_subscribers(ctx: Ctx, item: social.Indexed, thread_root: str) -> list[Effect]:
    assert ctx.conversation is not None
    effects: list[Effect] = []
    people = social.subscribers(ctx.session, item.post.conversation_id, item.post.author_id, item.topic_ids)
    if not people:
        return []
    params = {
        "author": ctx.name(ctx.actor), "channel": "#" + ctx.conversation.name,
        "snippet": readable_text(ctx, item.post.text, 200), "link": item.post.permalink,
    }
    for person in people:
        effects += notify(ctx, person, "social.ping_post", params=params,
                          thread_key=f"post:{item.post.conversation_id}:{thread_root}")
    return effects


def on_edit(ctx: Ctx, event: MessageEdited) -> list[Effect]:
    if not indexable(ctx, event.sender):
        return []
    text = sanitize(event.text, keep=[m.id for m in event.mentions], channels=event.channels)
    post = post_of(ctx, event.id, text, event.hashtags or extract_hashtags(text), event.mentions)
    social.reindex(ctx.session, ctx.tenant, post, event.edited_at or ctx.now(), ctx.now())
    return []


def on_delete(ctx: Ctx, event: MessageDeleted) -> list[Effect]:
    if ctx.conversation is not None:
        social.remove(ctx.session, ctx.tenant, ctx.conversation.id, event.id, ctx.now())
    return []


def on_reaction(ctx: Ctx, event: ReactionAdded) -> list[Effect]:
    if ctx.conversation is not None and not event.user.is_bot:
        social.react(ctx.session, ctx.tenant, ctx.conversation.id, event.message_id, ctx.actor.id, event.reaction,
                     event.removed, ctx.now())
    return []


def on_members(ctx: Ctx, event: MembersChanged) -> list[Effect]:
    """Membership drives who may read a private conversation; the bot joining starts a backfill."""
    conv = ctx.conversation
    if conv is None:
        return []
    for person in people_in_order(ctx, event.joined).values():  # memberships too, in one order
        people_store.ensure_member(ctx.session, conv, person, ctx.now())
    for ref in sorted(event.left, key=lambda r: r.id):
        person = people_store.find_person(ctx.session, ref.id)
        if person is not None and person.external_id == ref.id:
            ctx.session.execute(delete(ConversationMember).where(
                ConversationMember.conversation_id == conv.id, ConversationMember.person_id == person.id))
    if event.bot_left:
        conv.bot_member = False
        return []
    if not event.bot_joined:
        return []
    conv.bot_member = True
    if conv.kind == "dm" or not conv.indexing:
        return []
    anchor = f"backfill:{conv.external_id}"
    reply = ctx.reply("social.backfill_joined", days=DEFAULT_BACKFILL_DAYS, channel="#" + conv.name)
    since = ctx.now() - timedelta(days=DEFAULT_BACKFILL_DAYS)
    return [Outbound(reply, to=event.conversation, anchor=anchor),
            FetchHistory(event.conversation, since, requested_by=None, progress_anchor=anchor)]


def index_history(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    named = "#" in args
    conv = ctx.find_channel(args) if named else ctx.conversation
    if named and (conv is None or not conv.bot_member):
        raise UserError("error.unknown_channel", channel=args[args.index("#"):].split()[0][:60])
    if conv is None or conv.kind == "dm":
        raise UserError("social.backfill_which_channel")
    ctx.require_role(("animator",), conv, "social.action_backfill")
    if not conv.indexing:
        raise UserError("social.backfill_indexing_off", channel="#" + conv.name)
    days = DEFAULT_BACKFILL_DAYS
    m = _DAYS.search(args)
    if m:
        days = int(m.group(1))
        if not 1 <= days <= MAX_BACKFILL_DAYS:
            raise UserError("social.backfill_bad_days", max=MAX_BACKFILL_DAYS, given=days)
    anchor = f"backfill:{conv.external_id}"
    reply = ctx.reply("social.backfill_started", private=True, days=days, channel="#" + conv.name)
    fetch = FetchHistory(ctx.ref_of(conv), ctx.now() - timedelta(days=days), requested_by=msg.sender,
                         progress_anchor=anchor)
    return [ctx.answer(reply, anchor=anchor), fetch]


def register(r: Registry) -> None:
    r.on(IncomingMessage, on_message)
    r.on(MessageEdited, on_edit)
    r.on(MessageDeleted, on_delete)
    r.on(ReactionAdded, on_reaction)
    r.on(MembersChanged, on_members)
    r.command(CommandSpec("index history", "indexer historique", index_history, "social.backfill_help",
                          "social.backfill_usage", aliases=("indexer l'historique", "import history"), group="admin"))

