"""`referent` (`référent`): who my référents are — the current channel's (or `referent #channel`),
my department's and my site's (from my profile), and the référents for everyone — and where a
suggestion sent from here would go. A person without a department or site in their profile is
told so, with the command that sets it; when nobody at all is their référent, they are told
that suggestions and requests go to the admins.

Privacy: a private channel's référents are shown only to its members and the admins; to anyone
else the channel does not exist (the same answer as an unknown channel).
"""
from __future__ import annotations

from babel.lists import format_list

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.types import Card, IncomingMessage, Reply
from store import referents as store
from store.models.core import Conversation, Person


def _channel(ctx: Ctx, args: str) -> Conversation | None:
    """The channel asked about (`#name`), else the one the command was typed in (None in a DM)."""
    words = args.strip()
    if not words:
        conv = ctx.conversation
        return conv if conv is not None and conv.kind != "dm" else None
    if "#" not in words:  # a channel typed, or one a platform named (sanitized to "(#C123)" by the core)
        raise UserError("referents.bad_args", given=words[:60], usage=ctx.t("referents.usage"))
    conv = ctx.find_channel(words)
    hidden = conv is not None and conv.kind == "private" and not ctx.is_admin and not store.is_member(
        ctx.session, conv.id, ctx.actor.id)
    if conv is None or conv.kind == "dm" or hidden:
        raise UserError("error.unknown_channel", channel=words[:60])
    return conv


def _names(ctx: Ctx, people: list[Person]) -> str:
    return format_list([ctx.name(p) for p in people], locale=ctx.locale) if people else ctx.t("referents.nobody")


def referent_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    conv = _channel(ctx, args)
    person = ctx.actor
    fields: list[tuple[str, str]] = []
    found = 0
    if conv is not None:
        referents = store.of_channel(ctx.session, conv)
        animators = store.of_channel(ctx.session, conv, ("animator",))
        found += len(referents)
        fields.append((ctx.t("referents.field.channel", channel=conv.name), _names(ctx, referents)))
        if animators:
            fields.append((ctx.t("referents.field.animators", channel=conv.name), _names(ctx, animators)))
    missing: list[str] = []
    for kind in ("department", "site"):
        value = (getattr(person, kind) or "").strip()
        if not value:
            missing.append(kind)
            fields.append((ctx.t(f"referents.field.no_{kind}"), ctx.t(f"referents.set_{kind}")))
            continue
        people = store.of_scope(ctx.session, kind, value)
        found += len(people)
        fields.append((ctx.t(f"referents.field.{kind}", value=value), _names(ctx, people)))
    everyone = store.everywhere(ctx.session)
    found += len(everyone)
    fields.append((ctx.t("referents.field.everywhere"), _names(ctx, everyone)))
    route = store.responsible(ctx.session, person, conv, ctx.settings.admins, exclude={person.id})
    footer = ctx.t("referents.route", names=_names(ctx, list(route.people))) if route.people else ctx.t("referents.route_nobody")
    card = Card(title=ctx.t("referents.title"), fields=tuple(fields), footer=footer)
    if found:
        key = "referents.yours_no_profile" if missing else "referents.yours"
        return ctx.reply(key, private=True, card=card)
    admins = format_list([ctx.name(p) for p in store.admins(ctx.session, ctx.settings.admins)] or [ctx.t("referents.nobody")],
                         locale=ctx.locale)
    key = "referents.none_no_profile" if missing else "referents.none"
    return ctx.reply(key, private=True, card=card, admins=admins)


def register(r: Registry) -> None:
    r.command(CommandSpec("referent", "référent", referent_command, "referents.help", "referents.usage",
                          aliases=("referents", "référents", "my referents", "mes référents", "who is my referent",
                                   "qui est mon référent"), group="accompaniment"))
