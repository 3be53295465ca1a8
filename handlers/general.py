"""help, lang and roles: the commands every workspace needs first."""
from __future__ import annotations

from sqlalchemy import and_, select

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import norm_token
from bot.types import Card, Effect, IncomingMessage, Reply
from handlers.stats.parse import LANGUAGES
from store import analytics
from store.analytics import Scope, ScopeNotFound
from store.models.core import Conversation, Person, Role

ROLE_WORDS = {"animator": "animator", "animateur": "animator", "animatrice": "animator",
              "referent": "referent", "referente": "referent"}
SCOPE_WORDS = {"department": "department", "departement": "department", "dept": "department", "service": "department",
               "site": "site", "language": "language", "langue": "language"}
GROUP_ORDER = ("general", "people", "social", "ideas", "help", "kudos", "digests", "privacy", "admin")
_OVERVIEW_CACHE = "help.overview"


def help_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    registry = ctx.services.registry
    if args:
        match = registry.match(args)
        if match is None:
            return _help_family(ctx, args)
        spec = match.spec
        usage = ctx.t(spec.usage_key) if spec.usage_key else registry.spelling(spec, ctx.locale)
        card = Card(title=registry.spelling(spec, ctx.locale), body=ctx.t(spec.help_key), fields=((ctx.t("help.usage"), usage),))
        return ctx.reply("help.command", private=True, card=card, command=registry.spelling(spec, ctx.locale), description=ctx.t(spec.help_key))
    card, count = _overview(ctx)
    return ctx.reply("help.overview", private=True, card=card, count=count)


def _visible(ctx: Ctx, spec: CommandSpec) -> bool:
    """Listed in help: not a button-only command, and admin-only ones for admins alone."""
    return not spec.hidden and (spec.permission != "admin" or ctx.is_admin)


def _help_family(ctx: Ctx, words: str) -> Reply:
    """`help role`, `aide rôle`, `help administration`: the commands whose name starts with these words
    (in any language), or the group so named; refused only when there is none."""
    registry = ctx.services.registry
    probe = tuple(norm_token(w) for w in words.split())
    wanted = norm_token(words.strip())
    group_named = {g for g in GROUP_ORDER if wanted in (norm_token(g), norm_token(ctx.t(f"help.group.{g}")))}
    found = [spec for spec in registry.commands if _visible(ctx, spec) and (
        spec.group in group_named
        or any(tuple(norm_token(t) for t in alias.split())[:len(probe)] == probe for alias in (spec.name, spec.fr, *spec.aliases)))]
    if not found:
        raise UserError("help.no_such_command", command=words[:60])
    lines = [f"`{registry.spelling(spec, ctx.locale)}` — {ctx.t(spec.help_key)}" for spec in found]
    card = Card(title=ctx.t("help.family_title", words=words[:60]), body="\n".join(lines), footer=ctx.t("help.footer"))
    return ctx.reply("help.family", private=True, card=card, words=words[:60], count=len(found))


def _overview(ctx: Ctx) -> tuple[Card, int]:
    """The command list card and its length. It depends only on the registry, the prompts, the
    language and whether the reader is an admin, all fixed for the process, so it is built once
    per (language, admin) in `services.extras`."""
    key = (ctx.locale, ctx.is_admin, ctx.settings.command_name, len(ctx.services.registry.commands))
    cache: dict[tuple[object, ...], tuple[Card, int]] = ctx.services.extras.setdefault(_OVERVIEW_CACHE, {})
    if key not in cache:
        cache[key] = _build_overview(ctx)
    return cache[key]


def _build_overview(ctx: Ctx) -> tuple[Card, int]:
    registry = ctx.services.registry
    groups: dict[str, list[str]] = {}
    for spec in registry.commands:
        if not _visible(ctx, spec):
            continue
        line = f"`{registry.spelling(spec, ctx.locale)}` — {ctx.t(spec.help_key)}"
        groups.setdefault(spec.group, []).append(line)
    ordered = sorted(groups, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER))
    sections = tuple((ctx.t(f"help.group.{g}"), "\n".join(groups[g])) for g in ordered)
    card = Card(title=ctx.t("help.title"), body=ctx.t("help.intro", command=ctx.settings.command_name),
                sections=sections, footer=ctx.t("help.footer"))
    return card, sum(len(v) for v in groups.values())


def lang_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    choice = norm_token(args.split()[0]) if args.split() else ""
    aliases = {"en": "en", "english": "en", "anglais": "en", "fr": "fr", "french": "fr", "francais": "fr"}
    if choice not in aliases:
        raise UserError("lang.unknown", given=args[:30], choices="en, fr")
    ctx.actor.locale = aliases[choice]
    ctx.locale = aliases[choice]
    return ctx.reply("lang.set", private=True, language=ctx.t(f"lang.name.{ctx.locale}"))


def workspace_lang_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    choice = norm_token(args.strip())
    if choice not in ("en", "fr"):
        raise UserError("lang.unknown", given=args[:30], choices="en, fr")
    ctx.workspace.default_locale = choice
    return ctx.reply("lang.workspace_set", private=True, language=ctx.t(f"lang.name.{choice}"))


def _parse_role_args(ctx: Ctx, args: str) -> tuple[list[Person], str, Conversation | None]:
    people, missing = ctx.find_people(args)
    if missing:
        raise UserError("error.unknown_person", who=", ".join(missing))
    role = next((ROLE_WORDS[norm_token(w)] for w in args.split() if norm_token(w) in ROLE_WORDS), None)
    if not people or role is None:
        raise UserError("error.missing_argument", usage=ctx.t("roles.usage"))
    channel = ctx.find_channel(args)
    if "#" in args and channel is None:
        raise UserError("error.unknown_channel", channel=args[args.index("#"):].split()[0][:60])
    return people, role, channel


def _role_scope(ctx: Ctx, args: str) -> Scope | None:
    """`… referent department Sales` / `site Lyon` / `language fr`: a part of the organisation
    (handlers/stats: analytics by scope), matched against people's profiles."""
    words = args.split()
    for i, word in enumerate(words):
        kind = SCOPE_WORDS.get(norm_token(word))
        if kind is None:
            continue
        value = " ".join(w for w in words[i + 1:] if norm_token(w) not in ROLE_WORDS and not w.startswith(("@", "\u27e6")))
        if not value:
            raise UserError("stats.role_scope_missing", kind=ctx.t(f"stats.kind.{kind}"), usage=ctx.t("roles.usage"))
        if kind == "language":
            value = LANGUAGES.get(norm_token(value), value)
        try:
            return analytics.resolve_scope(ctx.session, kind, value)
        except ScopeNotFound as missing:
            if missing.suggestion:
                raise UserError("stats.unknown_scope_suggest", kind=ctx.t(f"stats.kind.{kind}"), given=value[:60],
                                suggestion=missing.suggestion) from None
            raise UserError("stats.unknown_scope", kind=ctx.t(f"stats.kind.{kind}"), given=value[:60]) from None
    return None


def _scope_name(ctx: Ctx, kind: str | None, value: str) -> str:
    if kind == "language":
        return ctx.t("stats.scope.language", value=ctx.t(f"lang.name.{value}") if value in ("en", "fr") else value)
    return ctx.t(f"stats.scope.{kind}", value=value)


def _same_scope(channel: Conversation | None, scope: Scope | None) -> object:
    """The roles row filter for a channel, a part of the organisation or the whole workspace."""
    if scope is not None:
        return and_(Role.conversation_id.is_(None), Role.scope_kind == scope.kind, Role.scope_value == str(scope.value))
    if channel is not None:
        return Role.conversation_id == channel.id
    return and_(Role.conversation_id.is_(None), Role.scope_kind.is_(None))


def role_add(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    people, role, channel = _parse_role_args(ctx, args)
    part = None if channel else _role_scope(ctx, args)
    added: list[Person] = []
    had: list[Person] = []
    for person in people:
        exists = ctx.session.scalar(select(Role.id).where(
            Role.person_id == person.id, Role.role == role, _same_scope(channel, part)))
        if exists is None:
            ctx.session.add(Role(person_id=person.id, role=role, conversation_id=channel.id if channel else None,
                                 scope_kind=part.kind if part else None, scope_value=str(part.value) if part else "",
                                 granted_by=ctx.actor.id, created_at=ctx.now()))
            added.append(person)
        else:
            had.append(person)
    scope = ctx.channel_link(channel) if channel else (
        _scope_name(ctx, part.kind, str(part.value)) if part else ctx.t("roles.everywhere"))
    role_name = ctx.t(f"role.one.{role}")
    if not added:
        raise UserError("roles.already_has", names=", ".join(ctx.name(p) for p in had), role=role_name, scope=scope,
                        count=len(had))
    ctx.audit("role.add", f"{role} {[p.id for p in added]} "
                          f"{channel.id if channel else (f'{part.kind}:{part.value}' if part else '*')}")
    effects: list[Effect] = [ctx.answer(ctx.reply("roles.added", names=", ".join(ctx.name(p) for p in added),
                                                  role=ctx.t(f"role.{role}"), scope=scope))]
    if had:
        effects.append(ctx.answer(ctx.reply("roles.already_has", private=True, names=", ".join(ctx.name(p) for p in had),
                                            role=role_name, scope=scope, count=len(had))))
    return effects


def role_remove(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    people, role, channel = _parse_role_args(ctx, args)
    part = None if channel else _role_scope(ctx, args)
    removed = 0
    for person in people:
        for row in ctx.session.scalars(select(Role).where(
                Role.person_id == person.id, Role.role == role, _same_scope(channel, part))):
            ctx.session.delete(row)
            removed += 1
    if not removed:
        raise UserError("roles.nothing_to_remove")
    ctx.audit("role.remove", f"{role} {[p.id for p in people]}")
    return ctx.reply("roles.removed", names=", ".join(ctx.name(p) for p in people), role=ctx.t(f"role.{role}"),
                     scope=ctx.channel_link(channel) if channel else (
                         _scope_name(ctx, part.kind, str(part.value)) if part else ctx.t("roles.everywhere")))


def role_list(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    channel = ctx.find_channel(args) if args else None
    query = select(Role, Person, Conversation).join(Person, Person.id == Role.person_id).outerjoin(
        Conversation, Conversation.id == Role.conversation_id)
    if channel is not None:
        query = query.where(Role.conversation_id == channel.id)
    lines = []
    for role, person, conv in ctx.session.execute(query.order_by(Role.role, Person.display_name)):
        scope = ctx.channel_link(conv) if conv else (
            _scope_name(ctx, role.scope_kind, role.scope_value) if role.scope_kind else ctx.t("roles.everywhere"))
        lines.append(ctx.t("roles.line", name=ctx.name(person), role=ctx.t(f"role.{role.role}"), scope=scope))
    admins = ", ".join(ctx.settings.admins) or ctx.t("error.no_one")
    if not lines:
        return ctx.reply("roles.none", private=True, admins=admins)
    card = Card(title=ctx.t("roles.title"), body="\n".join(lines), footer=ctx.t("roles.admins", admins=admins))
    return ctx.reply("roles.list", private=True, card=card, count=len(lines))


def register(r: Registry) -> None:
    r.command(CommandSpec("help", "aide", help_command, "help.help", "help.usage_line", aliases=("?", "commands", "commandes"), group="general"))
    r.command(CommandSpec("lang", "langue", lang_command, "lang.help", "lang.usage", aliases=("language",), group="general", needs_args=True))
    r.command(CommandSpec("workspace lang", "langue espace", workspace_lang_command, "lang.workspace_help", "lang.workspace_usage",
                          permission="admin", group="admin", needs_args=True, action_key="lang.action_workspace"))
    r.command(CommandSpec("role add", "rôle ajouter", role_add, "roles.add_help", "roles.usage", aliases=("role grant",),
                          permission="admin", group="admin", needs_args=True, action_key="roles.action_add"))
    r.command(CommandSpec("role remove", "rôle retirer", role_remove, "roles.remove_help", "roles.usage",
                          permission="admin", group="admin", needs_args=True, action_key="roles.action_remove"))
    r.command(CommandSpec("role list", "rôles", role_list, "roles.list_help", "roles.list_usage", aliases=("roles", "rôle liste"), group="admin"))
