"""`privacy` (what is stored, in plain words), `privacy me off|on`, `privacy channel off|on`
(any switch word of bot/words.py: enable, disable, oui, non…),
`export my data`, `forget me` (+ confirmation), and the retention purge job."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Iterator

from sqlalchemy import select

from bot.context import Ctx, JobCtx, UserError
from bot.registry import CommandSpec, Job, Registry
from bot.text import MARK_OPEN, marker_ids, norm_token, strip_markers
from bot.types import Action, Card, Effect, IncomingMessage, Reply
from bot.words import parse_switch, vocabulary
from store import notifications as notification_store
from store import social, social_privacy
from store.analytics import min_group
from store.idempotency import claim
from store.models.core import Conversation, Person

ME = {"me", "moi", "my", "mes"}
CHANNEL = {"channel", "canal", "chaine", "chaîne", "salon"}
JOB_TENANT = "_jobs"


def explain(ctx: Ctx) -> Reply:
    me_off = bool(social.opted_out(ctx.session, [ctx.actor.id]))
    conv = ctx.conversation
    fields = [(ctx.t("privacy.field_you"), ctx.t("privacy.you_off" if me_off else "privacy.you_on"))]
    if conv is not None and conv.kind != "dm":
        fields.append((ctx.t("privacy.field_channel", channel="#" + conv.name),
                       ctx.t("privacy.channel_on" if conv.indexing else "privacy.channel_off")))
    fields.append((ctx.t("surveys.privacy_field"), ctx.t("surveys.privacy_text", minimum=min_group(ctx.session))))
    card = Card(
        title=ctx.t("privacy.title"),
        body=ctx.t("privacy.what", days=ctx.settings.retention_days),
        fields=tuple(fields),
        footer=ctx.t("privacy.footer"),
    )
    return ctx.reply("privacy.explained", private=True, card=card, days=ctx.settings.retention_days)


def privacy_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    words = args.split()
    if not words:
        return explain(ctx)
    head = norm_token(words[0])
    switch = parse_switch(words[1], vocabulary(ctx.services.prompts)) if len(words) > 1 else None
    if head in {norm_token(w) for w in ME}:
        if switch is None:
            raise UserError("privacy.usage_error")
        removed = social_privacy.set_person_indexing(ctx.session, ctx.tenant, ctx.actor, switch, ctx.now())
        ctx.audit("privacy.person", "on" if switch else "off")
        return ctx.reply("privacy.me_on" if switch else "privacy.me_off", private=True, removed=removed)
    if head in {norm_token(w) for w in CHANNEL}:
        if switch is None:
            raise UserError("privacy.usage_error")
        conv = ctx.find_channel(" ".join(words[2:])) if len(words) > 2 else ctx.conversation
        if conv is None or conv.kind == "dm":
            raise UserError("privacy.which_channel")
        ctx.require_role(("animator",), conv, "privacy.action_channel")
        removed = social_privacy.set_channel_indexing(ctx.session, conv, switch)
        ctx.audit("privacy.channel", f"{conv.id} {'on' if switch else 'off'}")
        key = "privacy.channel_set_on" if switch else "privacy.channel_set_off"
        return ctx.reply(key, channel="#" + conv.name, removed=removed)
    raise UserError("privacy.usage_error")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _named(ctx: Ctx, data: Any) -> Any:
    """The export with the stored markers (`⟦@U123⟧`, `⟦#C123⟧`, code spans) shown as a reader
    would see them: `@Display Name`, `#channel`, `` `code` ``."""
    user_ids, channel_ids = marker_ids([t for t in _strings(data) if MARK_OPEN in t])
    people = {p.external_id: p.display_name or p.handle for p in ctx.session.scalars(
        select(Person).where(Person.external_id.in_(user_ids)))} if user_ids else {}
    channels = {c.external_id: c.name for c in ctx.session.scalars(
        select(Conversation).where(Conversation.external_id.in_(channel_ids)))} if channel_ids else {}

    def plain(text: str) -> str:
        return strip_markers(text, people, channels) if MARK_OPEN in text else text

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return plain(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(data)


def export_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    data = _named(ctx, social_privacy.export_person(ctx.session, ctx.actor))
    data["exported_at"] = ctx.now().isoformat()
    content = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    name = f"causette-{ctx.actor.handle or ctx.actor.external_id}.json"
    return ctx.reply("privacy.exported", private=True, attachment=(name, content),
                     messages=len(data["messages"]), size=len(content))


def forget_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    card = Card(title=ctx.t("privacy.forget_title"), body=ctx.t("privacy.forget_body"),
                actions=(Action(ctx.t("privacy.forget_button"), "forget me confirm", "danger"),))
    return ctx.reply("privacy.forget_confirm", private=True, card=card)


def forget_confirm_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    reply = ctx.reply("privacy.forgotten", private=True)
    social_privacy.forget_person(ctx.session, ctx.actor)
    return reply


def retention_job(jctx: JobCtx) -> list[Effect]:
    """Once an hour, across workspaces: message snippets past `settings.retention_days` go."""
    now = jctx.now
    if not claim(jctx.session, JOB_TENANT, f"social.retention:{now:%Y-%m-%dT%H}"):
        return []
    cutoff = now - timedelta(days=jctx.services.settings.retention_days)
    social_privacy.purge_older_than(jctx.session, cutoff)
    notification_store.purge_before(jctx.session, cutoff)
    return []


def register(r: Registry) -> None:
    g = "privacy"
    r.command(CommandSpec("privacy", "confidentialité", privacy_command, "privacy.help", "privacy.usage",
                          aliases=("vie privée", "confidentialite"), group=g))
    r.command(CommandSpec("export my data", "exporter mes données", export_command, "privacy.export_help",
                          aliases=("export data", "mes données", "exporter mes donnees"), group=g))
    r.command(CommandSpec("forget me", "oublie-moi", forget_command, "privacy.forget_help",
                          aliases=("oublie moi", "oubliez-moi", "oubliez moi"), group=g))
    r.command(CommandSpec("forget me confirm", "oublie-moi confirmer", forget_confirm_command, "privacy.forget_help",
                          aliases=("oublie moi confirmer",), group=g, hidden=True))
    r.job(Job("social.retention", timedelta(hours=1), retention_job))
