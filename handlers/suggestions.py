"""Suggestions: `suggest <text>` (`suggestion <texte>`), `suggest anon …`, or the "Send as a
suggestion" message shortcut file a numbered suggestion routed to the référents responsible
(the channel's, else the author's department's, else their site's, else the référents of
everywhere, else the admins; the author is told who received it and which step had no one).
The référents get it in their grouped DM with buttons: take, answer, done, decline with a
reason; the author hears back at every step. `suggestions` lists mine, or for a référent
those I handle. A suggestion still open after `settings.suggestion_escalation_days` working
days is escalated once to the admins (`suggestions.escalate`, claimed once across workers).

Privacy: a suggestion is read by its author, the people it was routed to and the admins
(store/suggestions.py). An anonymous suggestion names its author to no one; an admin may look
them up (`suggestion author <n>`), which is written to the audit log, like anonymous ideas.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Sequence

from babel.lists import format_list

from bot.context import Ctx, JobCtx, UserError
from bot.registry import CommandSpec, Job, Registry
from bot.text import one_line, shorten
from bot.types import Action, Card, Effect, Form, FormField, IncomingMessage, Reply
from handlers.contribution_common import claimed_escalations, conversation_zone, truthy, written_text
from handlers.help_routing import add_working_hours
from handlers.notifications.budget import notify
from store import people as people_store
from store import referents as referents_store
from store import suggestions as store
from store.models.core import Person
from store.models.referents import Suggestion

TEXT_MIN = 3
TEXT_MAX = 2000
ANSWER_MAX = 2000
HOURS_PER_DAY = 9  # a working day: 09:00–18:00 (handlers.help_routing.add_working_hours)
FINAL = ("done", "declined")


# Routing --------------------------------------------------------------------------
def route_text(ctx: Ctx, route: referents_store.Route, locale: str | None = None) -> str:
    """Who received it, and which steps of the chain found no one, in `locale` (the actor's)."""
    tr = ctx.translator(locale or ctx.locale)
    names = format_list([ctx.name(p) for p in route.people] or [tr("suggestions.no_one")], locale=locale or ctx.locale)
    lines = [tr(f"suggestions.route.{route.kind}", names=names, value=route.value, count=max(1, len(route.people)))]
    for kind, value in route.missed:
        if kind in ("department", "site") and not value:
            lines.append(tr(f"suggestions.missed.no_{kind}"))
        elif kind != "everywhere":
            lines.append(tr(f"suggestions.missed.{kind}", value=value))
    return "\n".join(lines)


def _actions(s: Suggestion) -> tuple[Action, ...]:
    n = s.number
    take = () if s.status != "open" else (Action("suggestions.button.take", f"suggestion take {n}", "primary"),)
    return (*take, Action("suggestions.button.answer", f"suggestion answer {n}"),
            Action("suggestions.button.done", f"suggestion done {n}"),
            Action("suggestions.button.decline", f"suggestion decline {n}", "danger"))


def author_label(ctx: Ctx, s: Suggestion, locale: str) -> str:
    if s.anonymous:
        return ctx.t_in(locale, "suggestions.anonymous")
    author = ctx.session.get(Person, s.author_id)
    return ctx.name(author) if author else "?"


def _notify_handlers(ctx: Ctx, s: Suggestion, people: Sequence[Person], key: str, *, tag: str) -> list[Effect]:
    effects: list[Effect] = []
    for person in people:
        params = {"id": s.number, "text": shorten(s.text, 300), "author": author_label(ctx, s, ctx.locale_of(person))}
        effects += notify(ctx, person, key, params=params, thread_key=f"suggestion:{s.number}:{tag}", actions=_actions(s))
    return effects


# Filing -----------------------------------------------------------------------------
def submit(ctx: Ctx, msg: IncomingMessage, text: str, *, anonymous: bool) -> list[Effect]:
    text = text.strip()
    if len(one_line(text)) < TEXT_MIN:
        raise UserError("suggestions.text_required", usage=ctx.t("suggestions.usage"))
    if len(text) > TEXT_MAX:
        raise UserError("suggestions.too_long", limit=TEXT_MAX, length=len(text))
    conv = ctx.conversation
    source_id = msg.source_id if msg.via == "shortcut" and msg.source_id else msg.id
    source_key = f"{msg.conversation.id}:{source_id}"
    if store.suggestion_by_source(ctx.session, source_key) is not None:
        existing = store.suggestion_by_source(ctx.session, source_key)
        return [ctx.answer(ctx.reply("suggestions.already_filed", private=True, id=existing.number if existing else 0))]
    route = referents_store.responsible(ctx.session, ctx.actor, conv, ctx.settings.admins, exclude={ctx.actor.id})
    if not route.people:
        raise UserError("suggestions.nobody", admins=", ".join(ctx.settings.admins) or ctx.t("error.no_one"))
    now = ctx.now()
    escalate_at = None
    if route.kind != "admins":
        hours = ctx.settings.suggestion_escalation_days * HOURS_PER_DAY
        escalate_at = add_working_hours(now, hours, conversation_zone(conv, ctx.actor.tz))
    s = store.create_suggestion(ctx.session, ctx.tenant, source_key=source_key, author_id=ctx.actor.id, text=text,
                                anonymous=anonymous, conversation_id=conv.id if conv and conv.kind != "dm" else None,
                                permalink=(msg.source_permalink if msg.via == "shortcut" else "") or "",
                                route=route.kind, route_value=route.value, escalate_at=escalate_at, now=now)
    if s is None:
        return []
    store.route_suggestion(ctx.session, ctx.tenant, s.id, [p.id for p in route.people], now)
    effects: list[Effect] = [ctx.answer(ctx.reply("suggestions.filed_anon" if anonymous else "suggestions.filed", private=True,
                                                  id=s.number, route=route_text(ctx, route)))]
    effects += _notify_handlers(ctx, s, route.people, "suggestions.notify.new", tag="new")
    return effects


def suggest_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    values = msg.form_values or {}
    text = args.strip() or str(values.get("text", "")).strip() or msg.source_text.strip()
    if not text:
        return _form(ctx)
    return submit(ctx, msg, text, anonymous=truthy(values.get("anonymous")))


def suggest_anon_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    text = args.strip() or msg.source_text.strip()
    if not text:
        return _form(ctx, anonymous=True)
    return submit(ctx, msg, text, anonymous=True)


def _form(ctx: Ctx, *, anonymous: bool = False) -> Reply:
    form = Form(title=ctx.t("suggestions.form.title"), submit_command="suggest", submit_label=ctx.t("suggestions.form.submit"),
                fields=(FormField("text", ctx.t("suggestions.form.text"), kind="multiline", required=True, max_length=TEXT_MAX),
                        FormField("anonymous", ctx.t("suggestions.form.anonymous"), kind="checkbox", value="yes" if anonymous else "")))
    return ctx.reply("suggestions.form", private=True, form=form)


# Handling -----------------------------------------------------------------------------
def _suggestion_arg(ctx: Ctx, args: str, usage: str) -> tuple[Suggestion, str]:
    number, rest = ctx.numbered(args)
    if number is None:
        raise UserError("suggestions.id_required", usage=ctx.t(usage))
    s = store.suggestion(ctx.session, number, reader_id=ctx.actor.id, admin=ctx.is_admin)
    if s is None:  # also one the actor may not read: not even its existence shows
        raise UserError("suggestions.not_found", id=number)
    return s, rest


def _handler_arg(ctx: Ctx, args: str, usage: str) -> tuple[Suggestion, str]:
    """A suggestion the actor handles: routed to them, or any for an admin. Its author may not."""
    s, rest = _suggestion_arg(ctx, args, usage)
    if not ctx.is_admin and not store.is_routed(ctx.session, s.id, ctx.actor.id):
        raise UserError("suggestions.not_handler", id=s.number)
    if s.status in FINAL:
        raise UserError(f"suggestions.already_{s.status}", id=s.number)
    return s, rest


def _tell_author(ctx: Ctx, s: Suggestion, key: str, tag: str, **params: object) -> list[Effect]:
    author = ctx.session.get(Person, s.author_id)
    if author is None or author.id == ctx.actor.id:
        return []
    return notify(ctx, author, key, params={"id": s.number, "name": ctx.name(ctx.actor), "text": shorten(s.text, 120), **params},
                  thread_key=f"suggestion:{s.number}:{tag}")


def take_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    s, _ = _handler_arg(ctx, args, "suggestions.take_usage")
    if not store.move(ctx.session, s.id, came_from=("open",), status="taken", now=ctx.now(), handler_id=ctx.actor.id):
        ctx.session.refresh(s)
        who = ctx.session.get(Person, s.handler_id) if s.handler_id else None
        if who is not None and who.id == ctx.actor.id:
            raise UserError("suggestions.already_yours", id=s.number)
        raise UserError("suggestions.already_taken", id=s.number, name=ctx.name(who) if who else "?")
    effects: list[Effect] = [ctx.answer(ctx.reply("suggestions.taken", private=True, id=s.number))]
    return effects + _tell_author(ctx, s, "suggestions.notify.taken", "taken")


def _written_step(ctx: Ctx, msg: IncomingMessage, args: str, *, verb: str, field: str, status: str) -> Reply | list[Effect]:
    """`suggestion answer|decline N <text>`: the text comes from the arguments or the form (opened
    when neither has it); the step is taken once, audited, and the author is told with the text."""
    s, rest = _handler_arg(ctx, args, f"suggestions.{verb}_usage")
    text = written_text(ctx, msg, rest, field=field, limit=ANSWER_MAX,
                        form_title=ctx.t(f"suggestions.form.{verb}_title", id=s.number),
                        field_label=ctx.t(f"suggestions.form.{field}"), submit_label=ctx.t(f"suggestions.form.submit_{verb}"),
                        submit_command=f"suggestion {verb} {s.number}", form_key=f"suggestions.{verb}_form", id=s.number)
    if isinstance(text, Reply):
        return text
    if not store.move(ctx.session, s.id, came_from=("open", "taken", "answered"), status=status, now=ctx.now(),
                      handler_id=ctx.actor.id, **{field: text}):
        raise UserError("suggestions.already_done", id=s.number)
    ctx.audit(f"suggestion.{status}", f"suggestion {s.number}")
    effects: list[Effect] = [ctx.answer(ctx.reply(f"suggestions.{status}", private=True, id=s.number))]
    tag = f"answered:{s.updated_at.timestamp():.0f}" if status == "answered" else status
    return effects + _tell_author(ctx, s, f"suggestions.notify.{status}", tag, **{field: shorten(text, 600)})


def answer_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    return _written_step(ctx, msg, args, verb="answer", field="answer", status="answered")


def done_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    s, _ = _handler_arg(ctx, args, "suggestions.take_usage")
    if not store.move(ctx.session, s.id, came_from=("open", "taken", "answered"), status="done", now=ctx.now(),
                      handler_id=ctx.actor.id):
        raise UserError("suggestions.already_done", id=s.number)
    ctx.audit("suggestion.done", f"suggestion {s.number}")
    effects: list[Effect] = [ctx.answer(ctx.reply("suggestions.closed", private=True, id=s.number))]
    return effects + _tell_author(ctx, s, "suggestions.notify.done", "done")


def decline_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    return _written_step(ctx, msg, args, verb="decline", field="reason", status="declined")


def author_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """Admins only, for abuse handling; every look-up is written to the audit log."""
    s, _ = _suggestion_arg(ctx, args, "suggestions.take_usage")
    author = ctx.session.get(Person, s.author_id)
    ctx.audit("suggestion.author_revealed", f"suggestion {s.number} anonymous={s.anonymous}")
    return ctx.reply("suggestions.author_is", private=True, id=s.number, name=ctx.name(author) if author else "?",
                     anonymous=ctx.t("suggestions.yes") if s.anonymous else ctx.t("suggestions.no"))


# Lists ----------------------------------------------------------------------------------
def _line(ctx: Ctx, s: Suggestion, *, with_author: bool) -> str:
    status = ctx.t(f"suggestions.status.{s.status}")
    if with_author:
        return ctx.t("suggestions.list_line_from", id=s.number, text=shorten(s.text, 80), status=status,
                     author=author_label(ctx, s, ctx.locale))
    return ctx.t("suggestions.list_line", id=s.number, text=shorten(s.text, 80), status=status)


def list_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    word = args.strip().casefold()
    handled = store.handled_by(ctx.session, ctx.actor.id, admin=ctx.is_admin)
    own = store.mine(ctx.session, ctx.actor.id)
    referent = ctx.is_admin or referents_store.is_referent(ctx.session, ctx.actor) or bool(handled)
    if word in ("mine", "mes", "miennes") or not referent:
        if not own:
            return ctx.reply("suggestions.list_empty", private=True)
        card = Card(title=ctx.t("suggestions.list_title_mine"), body="\n".join(_line(ctx, s, with_author=False) for s in own))
        return ctx.reply("suggestions.list", private=True, card=card, count=len(own))
    if not handled:
        return ctx.reply("suggestions.list_handled_empty", private=True)
    card = Card(title=ctx.t("suggestions.list_title_handled"), body="\n".join(_line(ctx, s, with_author=True) for s in handled),
                footer=ctx.t("suggestions.list_footer"))
    return ctx.reply("suggestions.list", private=True, card=card, count=len(handled))


def show_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    s, _ = _suggestion_arg(ctx, args, "suggestions.take_usage")
    handler = ctx.session.get(Person, s.handler_id) if s.handler_id else None
    fields = [(ctx.t("suggestions.field.status"), ctx.t(f"suggestions.status.{s.status}")),
              (ctx.t("suggestions.field.author"), author_label(ctx, s, ctx.locale))]
    if handler is not None:
        fields.append((ctx.t("suggestions.field.handler"), ctx.name(handler)))
    if s.answer:
        fields.append((ctx.t("suggestions.field.answer"), s.answer))
    if s.reason:
        fields.append((ctx.t("suggestions.field.reason"), s.reason))
    if s.escalated_at is not None:
        fields.append((ctx.t("suggestions.field.escalated"), ctx.t("suggestions.yes")))
    mine = s.author_id == ctx.actor.id
    handles = ctx.is_admin or store.is_routed(ctx.session, s.id, ctx.actor.id)
    actions = _actions(s) if handles and not mine and s.status not in FINAL else ()
    tr = ctx.translator(ctx.locale)
    card = Card(title=ctx.t("suggestions.card_title", id=s.number), body=shorten(s.text, 1500), fields=tuple(fields),
                actions=tuple(Action(tr(a.label), a.command, a.style) for a in actions))
    return ctx.reply("suggestions.shown", private=True, card=card, id=s.number, status=ctx.t(f"suggestions.status.{s.status}"))


# Escalation -----------------------------------------------------------------------------
def escalate(jctx: JobCtx) -> list[Effect]:
    """Open past its delay (nobody took, answered or closed it): once, to the admins."""
    effects: list[Effect] = []
    days = jctx.services.settings.suggestion_escalation_days
    for session, ctx, s in claimed_escalations(jctx, store.due_escalations, store.claim_escalation, Suggestion,
                                               lambda s: s.author_id):
        admins = [p for p in referents_store.admins(session, jctx.services.settings.admins) if p.id != s.author_id]
        store.route_suggestion(session, ctx.tenant, s.id, [p.id for p in admins], jctx.now, escalated=True)
        for person in admins:
            params = {"id": s.number, "text": shorten(s.text, 300), "author": author_label(ctx, s, ctx.locale_of(person)),
                      "days": days}
            effects += notify(ctx, person, "suggestions.notify.escalated", params=params,
                              thread_key=f"suggestion:{s.number}:escalated", actions=_actions(s))
        effects += notify(ctx, ctx.actor, "suggestions.notify.escalated_author",
                          params={"id": s.number, "days": days, "text": shorten(s.text, 120)},
                          thread_key=f"suggestion:{s.number}:escalated_author")
        jctx.audit(session, "suggestion.escalated", f"suggestion {s.number} to {len(admins)} admin(s)")
    return effects


def register(r: Registry) -> None:
    g = "accompaniment"
    r.command(CommandSpec("suggest", "suggestion", suggest_command, "suggestions.help", "suggestions.usage",
                          aliases=("send as a suggestion", "envoyer comme suggestion", "suggérer"), group=g))
    r.command(CommandSpec("suggest anon", "suggestion anonyme", suggest_anon_command, "suggestions.anon_help",
                          "suggestions.anon_usage", aliases=("suggest anonymously",), group=g))
    r.command(CommandSpec("suggestion take", "suggestion prendre", take_command, "suggestions.take_help",
                          "suggestions.take_usage", group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("suggestion answer", "suggestion répondre", answer_command, "suggestions.answer_help",
                          "suggestions.answer_usage", group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("suggestion done", "suggestion terminée", done_command, "suggestions.done_help",
                          "suggestions.take_usage", aliases=("suggestion terminee", "suggestion fait"), group=g, needs_args=True,
                          hidden=True))
    r.command(CommandSpec("suggestion decline", "suggestion refuser", decline_command, "suggestions.decline_help",
                          "suggestions.decline_usage", group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("suggestion show", "suggestion voir", show_command, "suggestions.show_help",
                          "suggestions.take_usage", group=g, needs_args=True))
    r.command(CommandSpec("suggestion author", "suggestion auteur", author_command, "suggestions.author_help",
                          "suggestions.take_usage", permission="admin", group="admin", needs_args=True,
                          action_key="suggestions.action_author"))
    r.command(CommandSpec("suggestions", "suggestions", list_command, "suggestions.list_help", "suggestions.list_usage",
                          aliases=("mes suggestions", "my suggestions"), group=g))
    r.job(Job("suggestions.escalate", timedelta(minutes=15), escalate))
