"""who knows <topic> / qui connaît <sujet>, and the skill synonyms admins maintain."""
from __future__ import annotations

from typing import Sequence

from bot.context import Ctx, UserError
from handlers.expertise import lookup
from handlers.expertise import taxonomy
from handlers.expertise.lookup import VECTORS_EVERY, Candidate, find_experts, track_changes, vectors_job
from bot.registry import CommandSpec, Job, Registry
from bot.text import norm_key, norm_token, one_line, topic_key
from bot.types import Action, Card, Effect, IncomingMessage, Reply
from store import expertise as xstore

# Words people put between the command and the topic: "who knows about X", "qui connaît le X".
FILLERS = {"about", "on", "of", "in", "the", "a", "an", "for", "sur", "en", "le", "la", "les", "l", "de", "du", "des",
           "un", "une", "bien", "well"}
MAX_ALIAS_CHARS = 80


def clean_topic(args: str) -> str:
    words = one_line(args).strip(" ?!.¿¡:;").split()
    while len(words) > 1 and norm_token(words[0]).rstrip("'’") in FILLERS:
        words = words[1:]
    if words and norm_token(words[0]).startswith(("l'", "l’", "d'", "d’")) and len(words[0]) > 2:
        words[0] = words[0][2:]
    return " ".join(words).strip(" ?!.:;")


def _role(ctx: Ctx, candidate: Candidate) -> str:
    p = candidate.person
    bits = ", ".join(b for b in (p.title, p.department) if b)
    return f"{bits} ({p.site})" if p.site and bits else bits or p.site or ctx.t("profile.unset")


def _lines(ctx: Ctx, candidates: tuple[Candidate, ...]) -> str:
    lines = []
    for c in candidates:
        lines.append(ctx.t("expert.line", name=ctx.name(c.person), role=_role(ctx, c), matched=", ".join(c.matched)))
        lines += [ctx.t("expert.line_why", why=why) for why in c.why]
    return "\n".join(lines)


def who_knows_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    topic = clean_topic(args)
    if not norm_key(topic):
        raise UserError("error.missing_argument", usage=ctx.t("expert.usage"))
    result = find_experts(ctx, topic, exclude=(ctx.actor.id,))  # the asker knows what they know
    shown = topic[:80]
    if not result.candidates:
        return _nobody(ctx, shown, result)
    sections = []
    if result.exact:
        sections.append((ctx.t("expert.exact", topic=shown), _lines(ctx, result.exact)))
    if result.close:
        sections.append((ctx.t("expert.close"), _lines(ctx, result.close)))
    actions = tuple(
        Action(ctx.t("expert.profile_button", name=ctx.name(c.person))[:75], f"profile @{c.person.external_id}")
        for c in result.candidates
    )
    card = Card(title=ctx.t("expert.title", topic=shown), sections=tuple(sections), actions=actions,
                footer=ctx.t("expert.footer"))
    return ctx.reply("expert.results", private=True, card=card, count=len(result.candidates), topic=shown)


def closest_topics(ctx: Ctx, topic: str, by_spelling: "Sequence[str] | lookup.ExpertResult", limit: int = 3) -> list[str]:
    """Topics to suggest when nobody matches: by meaning when the lookup offers it
    (`lookup.nearest_topics`), else the spelling suggestions the lookup made (a result's
    `suggestions`, computed only then). Only topics the asker may see: declared skills, or
    evidence they may read."""
    nearest = getattr(lookup, "nearest_topics", None)  # (label, similarity, tier), best first
    found = [label for label, _, _ in nearest(ctx, topic, limit=limit + 1)] if nearest is not None else []
    if not found:
        found = list(by_spelling.suggestions if isinstance(by_spelling, lookup.ExpertResult) else by_spelling)
    found = [label for label in found if topic_key(label) != topic_key(topic)]
    return found[:limit]


def _nobody(ctx: Ctx, shown: str, result: lookup.ExpertResult) -> Reply:
    """Nobody (else) matches: the closest topics, and a button that posts the question as a
    help request, so the people who know can still answer it."""
    suggestions = closest_topics(ctx, shown, result)
    if suggestions:
        reply_key, params = "expert.none", {"suggestions": ", ".join(suggestions)}
    else:
        reply_key, params = "expert.none_no_suggestion", {}
    body = [ctx.t("expert.none_body")]
    mine = find_experts(ctx, shown, limit=1)  # the asker is never their own expert, but is told
    if mine.candidates and mine.candidates[0].person.id == ctx.actor.id:
        body.insert(0, ctx.t("expert.none_but_you", matched=", ".join(mine.candidates[0].matched[:3])))
    actions = [Action(ctx.t("expert.ask_button"), ctx.t("expert.ask_command", topic=shown), "primary")]
    actions += [Action(ctx.t("expert.again_button", topic=s)[:75], ctx.t("expert.again_command", topic=s)) for s in suggestions]
    card = Card(title=ctx.t("expert.none_title", topic=shown), body="\n".join(body), actions=tuple(actions))
    return ctx.reply(reply_key, private=True, card=card, topic=shown, **params)


def ask_who_knows_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    """`ask who knows <topic>` (the nobody answer's button): the question "Who knows <topic>?"
    filed as a help request where it was asked, once per asker and topic."""
    from handlers.help_requests import open_request  # a feature beside this one, loaded when used
    from store import help_requests as help_store

    topic = clean_topic(args)
    if not norm_key(topic):
        raise UserError("error.missing_argument", usage=ctx.t("expert.ask_usage"))
    topic = topic[:80]
    source_key = f"who-knows:{ctx.actor.id}:{topic_key(topic)}"
    existing = help_store.by_source(ctx.session, source_key)
    if existing is not None:
        raise UserError("expert.ask_already", id=existing.number, topic=topic)
    thread = msg.thread_id or msg.conversation.thread_id or (msg.id if msg.via in ("message", "mention") else "")
    return open_request(ctx, msg, ctx.t("expert.ask_question", topic=topic), thread_id=thread or "",
                        source_key=source_key)


def alias_add_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    text = one_line(args)
    if "=" in text:
        alias, _, target = text.partition("=")
    else:
        alias, _, target = text.partition(" ")
    alias, target = alias.strip(), target.strip()
    if not norm_key(alias) or not norm_key(target):
        raise UserError("error.missing_argument", usage=ctx.t("expert.alias.usage"))
    if len(alias) > MAX_ALIAS_CHARS or len(target) > MAX_ALIAS_CHARS:
        raise UserError("expert.alias.too_long", limit=MAX_ALIAS_CHARS)
    if norm_key(alias) == norm_key(target):
        raise UserError("expert.alias.same", alias=alias)
    xstore.add_alias(ctx.session, ctx.tenant, alias, target)
    track_changes(ctx)
    return ctx.reply("expert.alias.added", alias=alias, target=target)


def alias_list_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    rows = xstore.aliases(ctx.session)
    if not rows:
        return ctx.reply("expert.alias.none", private=True)
    body = "\n".join(ctx.t("expert.alias.line", alias=a, target=t) for a, t in rows[:100])
    card = Card(title=ctx.t("expert.alias.title"), body=body, footer=ctx.t("expert.alias.footer"))
    return ctx.reply("expert.alias.list", private=True, card=card, count=len(rows))


def register(r: Registry) -> None:
    r.command(CommandSpec(
        "who knows", "qui connaît", who_knows_command, "expert.help", "expert.usage",
        aliases=("expert", "experts", "who's the expert on", "who’s the expert on", "who is the expert on",
                 "whos the expert on", "who can help with", "qui sait", "expert en", "qui s'y connaît en"),
        group="people", needs_args=True))
    r.command(CommandSpec("alias add", "alias ajouter", alias_add_command, "expert.alias.help", "expert.alias.usage",
                          permission="admin", group="admin", needs_args=True, action_key="expert.alias.action_add"))
    r.command(CommandSpec("ask who knows", "demande qui connaît", ask_who_knows_command, "expert.ask_help",
                          "expert.ask_usage", aliases=("demande qui connait", "demander qui connaît"),
                          group="people", needs_args=True, hidden=True))
    r.command(CommandSpec("taxonomy import", "taxonomie importer", taxonomy.import_command, "taxonomy.import_help",
                          "taxonomy.usage", aliases=("taxonomie import",), permission="admin", group="admin",
                          needs_args=True, action_key="taxonomy.action_import", max_args=taxonomy.MAX_PASTE_CHARS))
    r.command(CommandSpec("taxonomy clear", "taxonomie vider", taxonomy.clear_command, "taxonomy.clear_help",
                          "taxonomy.clear_usage", aliases=("taxonomie effacer",), permission="admin", group="admin",
                          action_key="taxonomy.action_clear"))
    r.command(CommandSpec("taxonomy", "taxonomie", taxonomy.status_command, "taxonomy.help", "taxonomy.status_usage",
                          group="people"))
    r.command(CommandSpec("alias list", "alias liste", alias_list_command, "expert.alias.list_help",
                          "expert.alias.list_usage", aliases=("aliases",), group="people"))
    r.job(Job("expertise.vectors", VECTORS_EVERY, vectors_job))  # topic vectors of the meaning tier
