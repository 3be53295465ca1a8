"""digest schedule | preview | list | pause | resume | delete | run, and personal `digest me`.

Channel digests are managed by the channel's animators and admins. A channel holds one digest
per rhythm (daily, weekly, monthly, custom) and content (sources, hashtags, sections): a second
one would post the same news twice and is refused, naming the first. The schedule lives in
the `digests` table; `handlers.digests.engine.run` (registered as a job) posts each period once.

The feature's other modules: schedule parsing (`parse`, `cron`), period windows and content
(`content`, `sources` and their `*_source` modules), rendering to a neutral Card (`render`),
the stored delivery payload (`payload`) and the exactly-once engine (`engine`).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.context import Ctx, UserError, zone
from handlers.digests import engine, payload
from handlers.digests.content import Sources
from handlers.digests.cron import Cron, next_after
from handlers.digests.parse import SECTIONS, check_tz, describe, parse_schedule
from bot.registry import CommandSpec, Job, Registry
from bot.text import MARK_CLOSE, MARK_OPEN, topic_key
from bot.types import Card, Effect, IncomingMessage, Reply
from bot.words import parse_switch, vocabulary
from store import digests as digest_store
from store import people as people_store
from store.idempotency import insert_ignore
from store.models.core import Conversation
from store.models.digests import Digest, DigestRun

_CHANNEL = re.compile(MARK_OPEN + r"#([^" + MARK_CLOSE + r"]+)" + MARK_CLOSE + r"|(?<![\w&/])#([\w\-]+)")
_SANITIZED_CHANNEL = re.compile(r"\(#([\w\-]+)\)")


# Helpers ---------------------------------------------------------------------
def _when(ctx: Ctx, frequency: str, cron: str) -> str:
    params = describe(frequency, cron)
    if "weekday" in params:
        params["weekday"] = ctx.t(f"words.day_name.{params['weekday']}")
    return ctx.t(f"digest.when.{frequency}", **params)


def _local(when: datetime | None, tz: str) -> datetime | str:
    """A run time in the digest's zone, formatted by the prompt for the reader's language."""
    return when.astimezone(zone(tz)) if when else "—"


def _split_target(ctx: Ctx, args: str) -> tuple[Conversation, str]:
    """The channel the digest is for: the first #channel of `args`, else the current channel.

    Adapters' channel markers reach handlers sanitised as `(#C123)`; they read as `#C123`."""
    args = _SANITIZED_CHANNEL.sub(r"#\1", args)
    m = _CHANNEL.search(args)
    if m and not args[: m.start()].strip():
        token = m.group(1) or m.group(2)
        conv = people_store.find_conversation(ctx.session, token)
        if conv is None:
            raise UserError("error.unknown_channel", channel="#" + token[:60])
        return conv, args[m.end():]
    if ctx.conversation is None or ctx.conversation.kind == "dm":
        raise UserError("digest.which_channel", usage=ctx.t("digest.usage.schedule"))
    return ctx.conversation, args


def _sources(ctx: Ctx, text: str) -> tuple[list[Conversation], list[str], str]:
    """#tokens naming a channel become channel sources (public only); others are hashtags."""
    channels: list[Conversation] = []
    hashtags: list[str] = []
    text = _SANITIZED_CHANNEL.sub(r"#\1", text)
    for m in _CHANNEL.finditer(text):
        token = m.group(1) or m.group(2)
        conv = people_store.find_conversation(ctx.session, token)
        if conv is not None:
            if conv.kind != "public":
                raise UserError("digest.source_private", channel="#" + conv.name)
            if conv not in channels:
                channels.append(conv)
        elif (key := topic_key(token)) and key not in hashtags:
            hashtags.append(key)
    return channels, hashtags, _CHANNEL.sub(" ", text)


def _digest_by_id(ctx: Ctx, args: str) -> Digest:
    number, _ = ctx.numbered(args)
    if number is None:
        raise UserError("digest.bad_id", given=args.strip()[:30])
    digest = ctx.session.get(Digest, number)
    if digest is None or digest.tenant != ctx.tenant:
        raise UserError("digest.not_found", id=number)
    if digest.kind == "personal":
        if digest.person_id != ctx.actor.id and not ctx.is_admin:
            raise UserError("digest.not_found", id=number)
    else:
        ctx.require_role(("animator",), _channel_of(ctx, digest), "digest.action.manage")
    return digest


def _channel_of(ctx: Ctx, digest: Digest) -> Conversation | None:
    return ctx.session.get(Conversation, digest.conversation_id) if digest.conversation_id else None


def _label(ctx: Ctx, digest: Digest) -> str:
    conv = _channel_of(ctx, digest)
    return "#" + conv.name if conv is not None else ctx.t("digest.kind.personal")


def _history_line(ctx: Ctx, past: digest_store.History) -> str:
    """The latest period, its outcome, the number of posts so far and the latest post's sections."""
    sections = ""
    if past.last_payload:
        card = payload.loads(past.last_payload).reply.card
        sections = ", ".join(h for h, _ in card.sections) if card else ""
    status = past.last_status if past.last_status in ("empty", "manual") else "posted"
    return ctx.t("digest.list_history", last=past.last_key.removeprefix("manual:").replace("T", " "),
                 outcome=ctx.t(f"digest.outcome.{status}"), posts=past.posts, sections=sections or "—")


def _same_content(a: Sources, b: Sources) -> bool:
    """Two digests of one channel built from the same channels, hashtags and sections: on the
    same rhythm they would post the same news twice (the rule: one per rhythm and content)."""
    return (set(a.channels), set(a.hashtags), set(a.sections)) == (set(b.channels), set(b.hashtags), set(b.sections))


def _audit(ctx: Ctx, action: str, digest: Digest) -> None:
    ctx.audit(action, f"digest {digest.id}")


# Commands --------------------------------------------------------------------
def schedule(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    channel, rest = _split_target(ctx, args)
    ctx.require_role(("animator",), channel, "digest.action.schedule")
    if channel.kind != "public":
        raise UserError("digest.not_public", channel="#" + channel.name)
    extra, hashtags, text = _sources(ctx, rest)
    request = parse_schedule(text, vocab=vocabulary(ctx.services.prompts))
    if request.words:
        raise UserError("digest.unknown_words", words=" ".join(request.words)[:80], usage=ctx.t("digest.usage.schedule"))
    tz = request.schedule.tz or channel.tz or ctx.actor.tz or "UTC"
    tz = check_tz(tz)
    sources = Sources(tuple(c.id for c in extra if c.id != channel.id), tuple(hashtags), request.sections or SECTIONS)
    duplicate = ctx.session.scalar(select(Digest.id).where(
        Digest.kind == "channel", Digest.conversation_id == channel.id, Digest.cron == request.schedule.cron, Digest.tz == tz))
    if duplicate is not None:
        raise UserError("digest.already", id=duplicate, channel="#" + channel.name)
    overlap = next((d for d in digest_store.channel_digests(ctx.session, channel.id, request.schedule.frequency)
                    if _same_content(Sources.loads(d.sources), sources)), None)
    if overlap is not None:
        raise UserError("digest.overlaps", id=overlap.id, channel="#" + channel.name,
                        when=_when(ctx, overlap.frequency, overlap.cron), tz=overlap.tz)
    now = ctx.now()
    digest = Digest(kind="channel", conversation_id=channel.id, created_by=ctx.actor.id, frequency=request.schedule.frequency,
                    cron=request.schedule.cron, tz=tz, sources=sources.dumps(), status="active",
                    next_run_at=next_after(Cron.parse(request.schedule.cron), now, zone(tz)), created_at=now, updated_at=now)
    ctx.session.add(digest)
    ctx.session.flush()
    _audit(ctx, "digest.schedule", digest)
    names = [ctx.t(f"digest.section.{s}") for s in sources.sections]
    names += ["#" + c.name for c in extra if c.id != channel.id] + ["#" + h for h in hashtags]
    return ctx.reply("digest.scheduled", private=True, id=digest.id, channel="#" + channel.name,
                     when=_when(ctx, digest.frequency, digest.cron), tz=tz, next=_local(digest.next_run_at, tz),
                     sources=", ".join(names))


def preview(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    channel, _ = _split_target(ctx, args)
    ctx.require_role(("animator",), channel, "digest.action.preview")
    if channel.kind != "public":
        raise UserError("digest.not_public", channel="#" + channel.name)
    digest = ctx.session.scalar(select(Digest).where(Digest.kind == "channel", Digest.conversation_id == channel.id)
                                .order_by(Digest.id).limit(1))
    if digest is None:  # not scheduled yet: show what a default weekly digest would say
        digest = Digest(kind="channel", conversation_id=channel.id, frequency="weekly", cron="0 9 * * 1",
                        tz=channel.tz or ctx.actor.tz or "UTC", sources=Sources().dumps(), tenant=ctx.tenant)
    outbound = engine.preview(ctx.services, ctx.session, digest, ctx.now())
    if outbound is None:
        return ctx.reply("digest.preview_empty", private=True, channel="#" + channel.name)
    return ctx.reply("digest.preview", private=True, card=outbound.reply.card, channel="#" + channel.name)


def list_digests(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    rows = list(ctx.session.scalars(select(Digest).order_by(Digest.id)))
    visible = [d for d in rows if d.kind == "channel" or d.person_id == ctx.actor.id]
    if not visible:
        return ctx.reply("digest.list_none", private=True, command=ctx.settings.command_name)
    shown = visible[:40]
    past = digest_store.history(ctx.session, [d.id for d in shown])
    lines = []
    for d in shown:
        lines.append(ctx.t("digest.list_line", id=d.id, target=_label(ctx, d), when=_when(ctx, d.frequency, d.cron), tz=d.tz,
                           status=ctx.t(f"digest.status.{d.status}"), next=_local(d.next_run_at, d.tz) if d.status == "active" else "—"))
        if d.id in past:
            lines.append(_history_line(ctx, past[d.id]))
    card = Card(title=ctx.t("digest.list_title"), body="\n".join(lines), footer=ctx.t("digest.list_footer", command=ctx.settings.command_name))
    return ctx.reply("digest.list", private=True, card=card, count=len(visible))


def pause(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    digest = _digest_by_id(ctx, args)
    digest.status, digest.updated_at = "paused", ctx.now()
    _audit(ctx, "digest.pause", digest)
    return ctx.reply("digest.paused", private=True, id=digest.id, target=_label(ctx, digest))


def resume(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """Resuming starts from now: periods that fell while paused are not posted."""
    digest = _digest_by_id(ctx, args)
    digest.status, digest.updated_at = "active", ctx.now()
    digest.next_run_at = next_after(Cron.parse(digest.cron), ctx.now(), zone(digest.tz))
    _audit(ctx, "digest.resume", digest)
    return ctx.reply("digest.resumed", private=True, id=digest.id, target=_label(ctx, digest),
                     next=_local(digest.next_run_at, digest.tz), tz=digest.tz)


def delete(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    digest = _digest_by_id(ctx, args)
    label = _label(ctx, digest)
    _audit(ctx, "digest.delete", digest)
    ctx.session.delete(digest)
    return ctx.reply("digest.deleted", private=True, id=digest.id, target=label)


def run_now(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect] | Reply:
    """Post the digest of the period ending now. One run per digest and minute, so a
    double click does not post twice."""
    digest = _digest_by_id(ctx, args)
    now = ctx.now()
    start, _ = engine.period_for(digest, now)
    key = "manual:" + now.strftime("%Y-%m-%dT%H:%M")
    built = engine.compose(ctx.services, ctx.session, digest, start, now + timedelta(seconds=1))
    if built is None:
        return ctx.reply("digest.run_empty", private=True, id=digest.id, target=_label(ctx, digest))
    claimed = insert_ignore(ctx.session, DigestRun, {"tenant": ctx.tenant, "digest_id": digest.id, "period_key": key,
                                                     "scheduled_for": now, "period_start": start, "status": "manual",
                                                     "created_at": now})
    if not claimed:
        return ctx.reply("digest.run_already", private=True, id=digest.id)
    _audit(ctx, "digest.run", digest)
    ack = ctx.reply("digest.run_done", private=True, id=digest.id, target=_label(ctx, digest))
    return [built[0], ctx.answer(ack)]


def me(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    existing = ctx.session.scalar(select(Digest).where(Digest.kind == "personal", Digest.person_id == ctx.actor.id))
    vocab = vocabulary(ctx.services.prompts)
    words = args.split()
    if not words or parse_switch(words[0], vocab) is False:
        if existing is None:
            return ctx.reply("digest.me_none", private=True, command=ctx.settings.command_name)
        ctx.session.delete(existing)
        return ctx.reply("digest.me_off", private=True)
    request = parse_schedule(args, sections_allowed=False, vocab=vocab)
    if request.words:
        raise UserError("digest.unknown_words", words=" ".join(request.words)[:80], usage=ctx.t("digest.usage.me"))
    if request.schedule.frequency not in ("daily", "weekly"):
        raise UserError("digest.me_frequency")
    tz = request.schedule.tz or ctx.actor.tz or (ctx.conversation.tz if ctx.conversation else "") or "UTC"
    tz = check_tz(tz)
    now = ctx.now()
    digest = existing or Digest(kind="personal", person_id=ctx.actor.id, created_by=ctx.actor.id, created_at=now,
                                sources=Sources().dumps())
    digest.frequency, digest.cron, digest.tz, digest.status, digest.updated_at = (
        request.schedule.frequency, request.schedule.cron, tz, "active", now)
    digest.next_run_at = next_after(Cron.parse(digest.cron), now, zone(tz))
    if existing is None:
        ctx.session.add(digest)
    ctx.session.flush()
    return ctx.reply("digest.me_set", private=True, when=_when(ctx, digest.frequency, digest.cron), tz=tz,
                     next=_local(digest.next_run_at, tz))


def register(r: Registry) -> None:
    group = "digests"
    r.command(CommandSpec("digest schedule", "digest planifier", schedule, "digest.help.schedule", "digest.usage.schedule",
                          aliases=("digest programmer", "digest add", "digest create"), group=group, needs_args=True))
    r.command(CommandSpec("digest preview", "digest aperçu", preview, "digest.help.preview", "digest.usage.preview", group=group))
    r.command(CommandSpec("digest list", "digest liste", list_digests, "digest.help.list", "digest.usage.list",
                          aliases=("digests",), group=group))
    r.command(CommandSpec("digest pause", "digest suspendre", pause, "digest.help.pause", "digest.usage.pause",
                          group=group, needs_args=True))
    r.command(CommandSpec("digest resume", "digest reprendre", resume, "digest.help.resume", "digest.usage.resume",
                          group=group, needs_args=True))
    r.command(CommandSpec("digest delete", "digest supprimer", delete, "digest.help.delete", "digest.usage.delete",
                          aliases=("digest remove",), group=group, needs_args=True))
    r.command(CommandSpec("digest run", "digest lancer", run_now, "digest.help.run", "digest.usage.run",
                          aliases=("digest now", "digest maintenant"), group=group, needs_args=True))
    r.command(CommandSpec("digest me", "digest moi", me, "digest.help.me", "digest.usage.me", group=group, needs_args=True))
    r.job(Job("digests", timedelta(minutes=1), engine.run))
