"""profile, profile set and skills: what people say about themselves."""
from __future__ import annotations

import re
from datetime import datetime

from bot.context import Ctx, UserError
from handlers.expertise.declare import normalise, normalised_note
from handlers.expertise.lookup import track_changes
from handlers.expertise.scoring import is_stale
from handlers.expertise.when import ago
from bot.registry import CommandSpec, Registry
from bot.text import norm_key, norm_token, one_line
from bot.types import Card, Effect, IncomingMessage, Reply
from bot.words import parse_switch, parse_timezone, vocabulary
from store import expertise as xstore
from store import people as people_store
from store.models.core import Person

MAX_SKILLS_PER_COMMAND = 20
EVIDENCE_KINDS = ("hashtag", "mentioned", "thanked", "help", "kudos")
MAX_FIELD_CHARS = 100
MAX_LANGUAGES_CHARS = 200
_SKILL_SPLIT = re.compile(r"[,;\n]+")
FIELDS = {
    "title": "title", "poste": "title", "titre": "title", "fonction": "title",
    "department": "department", "dept": "department", "service": "department", "departement": "department",
    "site": "site", "office": "site", "bureau": "site", "ville": "site",
    "tz": "tz", "timezone": "tz", "fuseau": "tz", "time zone": "tz",
    "languages": "languages", "langues": "languages", "language": "languages",
    "mentions": "mentions", "mention": "mentions",
}
LIST_WORDS = {"list", "liste", "mine", "mes", "miennes"}
def _target(ctx: Ctx, args: str) -> Person:
    if not args.strip():
        return ctx.actor
    people, missing = ctx.find_people(args)
    if people:
        return people[0]
    person = people_store.find_person(ctx.session, args.strip())
    if person is None:
        raise UserError("profile.unknown_person", who=(missing[0] if missing else args.strip())[:60])
    return person


def profile_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    person = _target(ctx, args)
    mine = person.id == ctx.actor.id
    unset = ctx.t("profile.unset")
    fields = [
        (ctx.t("profile.field.title"), person.title or unset),
        (ctx.t("profile.field.department"), person.department or unset),
        (ctx.t("profile.field.site"), person.site or unset),
        (ctx.t("profile.field.tz"), person.tz or unset),
        (ctx.t("profile.field.languages"), person.languages or unset),
        (ctx.t("profile.field.mentions"), ctx.t("profile.yes" if person.accepts_mentions else "profile.no")),
    ]
    if not person.active:
        fields.append((ctx.t("profile.field.status"), ctx.t("profile.status.inactive")))
    now = ctx.now()
    lines = []
    for skill, link in xstore.person_skills(ctx.session, person):
        stale = is_stale(link.confirmed_at.timestamp(), now.timestamp(), ctx.settings.skill_stale_days)
        lines.append(ctx.t("profile.skill_line_stale" if stale else "profile.skill_line", skill=skill.name,
                           source=ctx.t(f"profile.source.{link.source}") if link.source == "declared" else link.source,
                           when=ago(ctx, link.confirmed_at, now)))
    sections = [(ctx.t("profile.skills"), "\n".join(lines) or ctx.t("profile.no_skills_mine" if mine else "profile.no_skills"))]
    evidence = _evidence_lines(ctx, person)
    if evidence:
        sections.append((ctx.t("profile.evidence"), "\n".join(evidence)))
    card = Card(title=ctx.name(person), fields=tuple(fields), sections=tuple(sections),
                footer=ctx.t("profile.footer_mine") if mine else "")
    return ctx.reply("profile.card", private=True, card=card, name=ctx.name(person))


def _evidence_lines(ctx: Ctx, person: Person, limit: int = 8) -> list[str]:
    """What conversations the asker may read say about `person`, strongest topics first."""
    labels: dict[str, str] = {}
    kinds: dict[str, list[tuple[str, int]]] = {}
    latest: dict[str, datetime] = {}
    for key, label, kind, count, last in xstore.person_evidence(ctx.session, person.id, ctx.actor.id):
        labels.setdefault(key, label)
        kinds.setdefault(key, []).append((kind, count))
        latest[key] = max(latest.get(key, last), last)
    ranked = sorted(labels, key=lambda k: (-sum(n for _, n in kinds[k]), labels[k]))[:limit]
    lines = []
    for key in ranked:
        parts = ", ".join(
            ctx.t(f"profile.kind.{kind}", count=n) if kind in EVIDENCE_KINDS else ctx.t("profile.kind.other", kind=kind, count=n)
            for kind, n in kinds[key])
        lines.append(ctx.t("profile.evidence_line", topic=labels[key], kinds=parts, when=ago(ctx, latest[key], ctx.now())))
    return lines


def profile_set_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    words = args.split(maxsplit=1)
    head = norm_token(words[0]) if words else ""
    rest = words[1] if len(words) > 1 else ""
    if head == "time" and rest.split() and norm_token(rest.split()[0]) == "zone":
        head, rest = "tz", rest.split(maxsplit=1)[1] if len(rest.split()) > 1 else ""
    field = FIELDS.get(head)
    if field is None:
        raise UserError("profile.set.unknown_field", field=one_line(args)[:40], fields=ctx.t("profile.set.fields"))
    value = one_line(rest)
    label = ctx.t(f"profile.field.{field}").lower()
    if field == "mentions":
        choice = parse_switch(value, vocabulary(ctx.services.prompts))
        if choice is None:
            raise UserError("profile.set.bad_mentions", value=value[:40])
        ctx.actor.accepts_mentions = choice
        ctx.actor.updated_at = ctx.now()
        return ctx.reply("profile.set.mentions_on" if ctx.actor.accepts_mentions else "profile.set.mentions_off", private=True)
    if field == "tz":
        if not value:
            raise UserError("error.missing_argument", usage=ctx.t("profile.set.usage"))
        zone = parse_timezone(value)
        if zone is None:
            raise UserError("profile.set.bad_tz", value=value[:60])
        value = zone
    elif field == "languages":
        parts = [one_line(p) for p in value.split(",") if one_line(p)]
        value = ", ".join(dict.fromkeys(parts))
        if len(value) > MAX_LANGUAGES_CHARS:
            raise UserError("profile.set.bad_languages", limit=MAX_LANGUAGES_CHARS)
    elif len(value) > MAX_FIELD_CHARS:
        raise UserError("profile.set.too_long", field=label, limit=MAX_FIELD_CHARS)
    setattr(ctx.actor, field, value)
    ctx.actor.updated_at = ctx.now()
    if not value:
        return ctx.reply("profile.set.cleared", private=True, field=label)
    return ctx.reply("profile.set.done", private=True, field=label, value=value)


def parse_skills(text: str) -> list[str]:
    """Comma-separated skill names, validated: at most 20, each at most 80 characters."""
    names: dict[str, str] = {}
    parts = [one_line(p).strip(" .'\"`") for p in _SKILL_SPLIT.split(text)]
    parts = [p for p in parts if p]
    if not parts:
        raise UserError("skills.empty")
    if len(parts) > MAX_SKILLS_PER_COMMAND:
        raise UserError("skills.too_many", count=len(parts), limit=MAX_SKILLS_PER_COMMAND)
    for part in parts:
        if len(part) > xstore.MAX_SKILL_CHARS:
            raise UserError("skills.too_long", limit=xstore.MAX_SKILL_CHARS, skill=part[:30])
        key = norm_key(part)
        if not key or not any(ch.isalnum() for ch in key):
            raise UserError("skills.bad_name", skill=part[:30])
        names.setdefault(key, part)
    return list(names.values())


def skills_add_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    declared = normalise(ctx, parse_skills(args))  # aliases and near-duplicates join their topic
    added, confirmed = xstore.add_skills(ctx.session, ctx.tenant, ctx.actor, [d.stored for d in declared], ctx.now())
    track_changes(ctx)
    if added and confirmed:
        reply = ctx.reply("skills.added_and_confirmed", private=True, added=", ".join(added), confirmed=", ".join(confirmed))
    elif added:
        reply = ctx.reply("skills.added", private=True, added=", ".join(added))
    else:
        reply = ctx.reply("skills.confirmed", private=True, confirmed=", ".join(confirmed))
    note = normalised_note(ctx, declared)
    return [ctx.answer(reply), ctx.answer(note)] if note is not None else reply


def skills_remove_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    names = parse_skills(args)
    removed, unknown = xstore.remove_skills(ctx.session, ctx.tenant, ctx.actor, names)
    if not removed:
        raise UserError("skills.not_declared", unknown=", ".join(unknown))
    track_changes(ctx)
    if unknown:
        return ctx.reply("skills.removed_some", private=True, removed=", ".join(removed), unknown=", ".join(unknown))
    return ctx.reply("skills.removed", private=True, removed=", ".join(removed))


def skills_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    if args.strip() and norm_token(args.strip()) not in LIST_WORDS:
        if args.strip().startswith("@") or ctx.find_people(args)[0]:
            return profile_command(ctx, msg, args)
        raise UserError("error.missing_argument", usage=ctx.t("skills.usage"))
    now = ctx.now()
    rows = xstore.person_skills(ctx.session, ctx.actor)
    if not rows:
        return ctx.reply("skills.none", private=True)
    lines = []
    for skill, link in rows:
        stale = is_stale(link.confirmed_at.timestamp(), now.timestamp(), ctx.settings.skill_stale_days)
        lines.append(ctx.t("profile.skill_line_stale" if stale else "profile.skill_line", skill=skill.name,
                           source=ctx.t("profile.source.declared"), when=ago(ctx, link.confirmed_at, now)))
    card = Card(title=ctx.t("skills.title"), body="\n".join(lines), footer=ctx.t("skills.footer"))
    return ctx.reply("skills.list", private=True, card=card, count=len(rows))


def register(r: Registry) -> None:
    r.command(CommandSpec("profile", "profil", profile_command, "profile.help", "profile.usage",
                          aliases=("my profile", "mon profil", "whois"), group="people"))
    r.command(CommandSpec("profile set", "profil modifier", profile_set_command, "profile.set.help", "profile.set.usage",
                          aliases=("profil set", "profil changer", "set profile"), group="people", needs_args=True))
    r.command(CommandSpec("skills", "compétences", skills_command, "skills.help", "skills.usage",
                          aliases=("my skills", "mes compétences", "skill", "compétence"), group="people"))
    r.command(CommandSpec("skills add", "compétences ajouter", skills_add_command, "skills.add_help", "skills.add_usage",
                          aliases=("skill add", "compétence ajouter", "ajouter compétences", "add skills"),
                          group="people", needs_args=True))
    r.command(CommandSpec("skills remove", "compétences retirer", skills_remove_command, "skills.remove_help",
                          "skills.remove_usage",
                          aliases=("skill remove", "compétence retirer", "compétences supprimer", "remove skills"),
                          group="people", needs_args=True))
