"""Pulse surveys (issue 18): `survey new [template enps|satisfaction|functions]` (a form),
`survey list`, `survey close N`, `survey delete N`, and what a person in the audience does:
`survey answer N` (the questionnaire form; the DM's button), `survey decline N`.
Invitations, reminders and closing are jobs (handlers/surveys/jobs.py). Results:
handlers/surveys/results.py (its own helper). Store rules and anonymity: store/surveys.py."""
from __future__ import annotations

import importlib
import importlib.util
from datetime import date, timedelta
from typing import Any, Mapping

from sqlalchemy import select

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Job, Registry
from bot.types import Card, Effect, Form, FormField, IncomingMessage, Reply
from handlers.contribution_common import truthy
from handlers.surveys import jobs
from store import surveys as store
from store.models.core import Role
from store.models.surveys import Survey
from store.surveys import QuestionDraft, SurveyError

ROLES = ("animator", "referent")
TEMPLATES = ("satisfaction", "enps", "functions")
TEMPLATE_WORDS = {"satisfaction": "satisfaction", "enps": "enps", "functions": "functions", "fonctions": "functions",
                  "nps": "enps"}
KIND_WORDS = {"scale": "scale5", "scale5": "scale5", "echelle": "scale5", "échelle": "scale5", "note": "scale5",
              "enps": "enps", "nps": "enps", "single": "single", "choice": "single", "choix": "single",
              "unique": "single", "multiple": "multiple", "multiples": "multiple", "text": "text", "texte": "text",
              "libre": "text"}
AUDIENCES = ("all", "channel", "department", "site")
DEFAULT_DAYS = 7


def _refuse(error: SurveyError) -> UserError:
    return UserError(error.key, **error.params)


# Who may create -----------------------------------------------------------------------------
def _roles(ctx: Ctx) -> list[Role]:
    return list(ctx.session.scalars(select(Role).where(Role.person_id == ctx.actor.id, Role.role.in_(ROLES))))


def may_create(ctx: Ctx) -> bool:
    return ctx.is_admin or bool(_roles(ctx))


def may_survey(ctx: Ctx, kind: str, value: str) -> bool:
    """Admins and workspace-wide animators/référents: any audience; a channel's: its members;
    a department's or site's (scoped role): that department or site."""
    if ctx.is_admin:
        return True
    for role in _roles(ctx):
        if role.conversation_id is None and not role.scope_kind:
            return True
        if kind == "channel" and role.conversation_id is not None and str(role.conversation_id) == value:
            return True
        if kind == role.scope_kind and role.scope_value.strip().casefold() == value.strip().casefold():
            return True
    return False


def _require_creator(ctx: Ctx) -> None:
    if not may_create(ctx):
        raise UserError("surveys.error.not_allowed")


# survey new ---------------------------------------------------------------------------------
def _kind_word(ctx: Ctx, kind: str) -> str:
    return ctx.t(f"surveys.kind.{kind}")


def question_line(ctx: Ctx, draft: QuestionDraft) -> str:
    return " | ".join([f"{_kind_word(ctx, draft.kind)}: {draft.text}", *draft.choices])


def template_questions(ctx: Ctx, name: str) -> tuple[str, list[QuestionDraft]]:
    t = ctx.t
    if name == "enps":
        return t("surveys.template.enps.title"), [QuestionDraft("enps", t("surveys.template.enps.q1")),
                                                   QuestionDraft("text", t("surveys.template.enps.q2"))]
    if name == "functions":
        choices = tuple(t(f"surveys.template.functions.c{i}") for i in range(1, 8))
        return t("surveys.template.functions.title"), [
            QuestionDraft("multiple", t("surveys.template.functions.q1"), choices),
            QuestionDraft("single", t("surveys.template.functions.q2"), choices),
            QuestionDraft("text", t("surveys.template.functions.q3"))]
    return t("surveys.template.satisfaction.title"), [
        QuestionDraft("scale5", t("surveys.template.satisfaction.q1")),
        QuestionDraft("scale5", t("surveys.template.satisfaction.q2")),
        QuestionDraft("enps", t("surveys.template.satisfaction.q3")),
        QuestionDraft("text", t("surveys.template.satisfaction.q4"))]


def new_form(ctx: Ctx, title: str = "", drafts: list[QuestionDraft] | None = None) -> Form:
    closes = ctx.now().astimezone(ctx.tz()).date() + timedelta(days=DEFAULT_DAYS)
    t = ctx.t
    fields = (
        FormField("title", t("surveys.form.title_field"), value=title, required=True, max_length=200),
        FormField("questions", t("surveys.form.questions_field"), kind="multiline", required=True, max_length=8000,
                  value="\n".join(question_line(ctx, d) for d in drafts or [])),
        FormField("audience", t("surveys.form.audience_field"), kind="select", value="all",
                  options=tuple((a, t(f"surveys.audience.{a}")) for a in AUDIENCES)),
        FormField("audience_value", t("surveys.form.audience_value_field"), max_length=200),
        FormField("anonymous", t("surveys.form.anonymous_field"), kind="checkbox", value="yes"),
        FormField("closes", t("surveys.form.closes_field"), value=closes.isoformat(), required=True, max_length=20),
        FormField("reminders", t("surveys.form.reminders_field"), kind="select", value="1",
                  options=tuple((str(n), str(n)) for n in range(3))),
        FormField("recurrence", t("surveys.form.recurrence_field"), kind="select", value="none",
                  options=tuple((r, t(f"surveys.recurrence.{r}")) for r in ("none", "weekly", "monthly"))),
    )
    return Form(title=t("surveys.form.title"), submit_command="survey create", fields=fields,
                submit_label=t("surveys.form.submit"))


def new_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    _require_creator(ctx)
    words = args.split()
    if words and words[0].casefold() in ("template", "modèle", "modele"):
        words = words[1:]
    if words:
        name = TEMPLATE_WORDS.get(words[0].casefold())
        if name is None:
            raise UserError("surveys.error.template", given=words[0][:40], templates=", ".join(TEMPLATES))
        title, drafts = template_questions(ctx, name)
        return ctx.reply("surveys.form_intro", private=True, form=new_form(ctx, title, drafts))
    return ctx.reply("surveys.form_intro", private=True, form=new_form(ctx))


def parse_questions(text: str) -> list[QuestionDraft]:
    """One question a line: `kind: text | choice | choice` (kinds in English or French)."""
    drafts: list[QuestionDraft] = []
    for number, line in enumerate((ln.strip() for ln in text.splitlines() if ln.strip()), start=1):
        head, sep, rest = line.partition(":")
        kind = KIND_WORDS.get(head.strip().casefold()) if sep else None
        if kind is None:
            raise SurveyError("surveys.error.question", number=number)
        parts = [p.strip() for p in rest.split("|")]
        drafts.append(QuestionDraft(kind, parts[0], tuple(p for p in parts[1:] if p)))
    return drafts


def _audience(ctx: Ctx, kind: str, value: str) -> tuple[str, str]:
    kind = kind.strip().casefold() or "all"
    if kind not in AUDIENCES:
        raise UserError("surveys.error.audience_kind")
    value = value.strip()
    if kind == "all":
        return kind, ""
    if not value:
        raise UserError("surveys.error.audience_value")
    if kind == "channel":
        conv = ctx.find_channel(value) or ctx.find_channel("#" + value.lstrip("#"))
        if conv is None or conv.kind == "dm":
            raise UserError("surveys.error.channel", given=value[:80])
        return kind, str(conv.id)
    return kind, value


def _closing_day(ctx: Ctx, text: str) -> date:
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    if text.isdecimal():  # a number of days from today
        return ctx.now().astimezone(ctx.tz()).date() + timedelta(days=int(text))
    raise UserError("surveys.error.closes", given=text[:40])


def create_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    _require_creator(ctx)
    values: Mapping[str, Any] = dict(msg.form_values or {})
    if not values:
        return new_command(ctx, msg, args)
    kind, value = _audience(ctx, str(values.get("audience", "all")), str(values.get("audience_value", "")))
    if not may_survey(ctx, kind, value):
        raise UserError("surveys.error.audience_not_yours")
    recurrence = str(values.get("recurrence", "none")).strip().casefold()
    reminders = ctx.number_in(str(values.get("reminders", "1")).strip(), 0, 2)
    if reminders is None:
        raise UserError("surveys.error.reminders")
    today = ctx.now().date()
    try:
        drafts = parse_questions(str(values.get("questions", "")))
        survey = store.create(ctx.session, author_id=ctx.actor.id, title=str(values.get("title", "")), questions=drafts,
                              audience_kind=kind, audience_value=value, anonymous=truthy(values.get("anonymous")),
                              closes_on=_closing_day(ctx, str(values.get("closes", ""))), today=today,
                              reminders=reminders, recurrence="" if recurrence == "none" else recurrence)
    except SurveyError as error:
        raise _refuse(error) from None
    ctx.audit("survey.create", f"#{survey.id} {survey.audience_kind} anonymous={survey.anonymous}")
    people = store.counts(ctx.session, survey.id)["invited"]
    key = "surveys.created_anonymous" if survey.anonymous else "surveys.created_named"
    return ctx.reply(key, private=True, id=survey.id, title=survey.title, count=people, day=survey.closes_on)


# Answering ----------------------------------------------------------------------------------
def _survey_arg(ctx: Ctx, args: str) -> Survey:
    survey_id, _ = ctx.numbered(args)
    if survey_id is None:
        raise UserError("surveys.error.id_required")
    survey = store.get(ctx.session, survey_id)
    if survey is None:
        raise UserError("surveys.error.not_found", id=survey_id)
    return survey


def _open_for(ctx: Ctx, survey: Survey) -> None:
    """Refusals shared by the questionnaire and its submission."""
    if survey.status != "open" or ctx.now().date() > survey.closes_on:
        raise UserError("surveys.error.closed", day=survey.closed_on or survey.closes_on)
    row = store.participant(ctx.session, survey.id, ctx.actor.id)
    if row is None:
        raise UserError("surveys.error.not_asked")
    if row.state == "declined":
        raise UserError("surveys.error.declined")
    if row.state == "answered" and survey.anonymous:
        raise UserError("surveys.error.twice")


def questionnaire(ctx: Ctx, survey: Survey) -> Form:
    t = ctx.t
    fields: list[FormField] = []
    for number, q in enumerate(store.questions(ctx.session, survey.id), start=1):
        label = t("surveys.question_label", number=number, text=q.text)
        if q.kind == "scale5":
            options = tuple((str(v), t(f"surveys.scale.{v}")) for v in range(1, 6))
            fields.append(FormField(f"q{q.id}", label, kind="select", options=options))
        elif q.kind == "enps":
            fields.append(FormField(f"q{q.id}", label + " " + t("surveys.enps_hint"), kind="select",
                                    options=tuple((str(v), str(v)) for v in range(11))))
        elif q.kind == "single":
            fields.append(FormField(f"q{q.id}", label, kind="select",
                                    options=tuple((str(i), c) for i, c in enumerate(q.choices))))
        elif q.kind == "multiple":
            for i, choice in enumerate(q.choices):
                fields.append(FormField(f"q{q.id}_{i}", f"{label} — {choice}" if i == 0 else f"— {choice}", kind="checkbox"))
        else:
            fields.append(FormField(f"q{q.id}", label, kind="multiline", max_length=2000))
    # The notice is on the card itself: in the title (short: Slack keeps 24 characters of a
    # modal's title) and, in full, before the first question.
    notice = t("surveys.form.anonymous_notice") if survey.anonymous else t("surveys.form.named_notice")
    if fields:
        first = fields[0]
        fields[0] = FormField(first.name, f"{notice} — {first.label}", first.kind, first.value, first.required,
                              first.options, first.max_length)
    title_key = "surveys.form.answer_title" if survey.anonymous else "surveys.form.answer_title_named"
    return Form(title=t(title_key, id=survey.id), submit_command=f"survey submit {survey.id}", fields=tuple(fields),
                submit_label=t("surveys.form.send"))


def answer_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    survey = _survey_arg(ctx, args)
    _open_for(ctx, survey)
    key = "surveys.answer_intro_anonymous" if survey.anonymous else "surveys.answer_intro_named"
    return ctx.reply(key, private=True, form=questionnaire(ctx, survey), title=survey.title)


def _answers_from(ctx: Ctx, survey: Survey, values: Mapping[str, Any]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for q in store.questions(ctx.session, survey.id):
        if q.kind == "multiple":
            out[q.id] = [i for i in range(len(q.choices)) if truthy(values.get(f"q{q.id}_{i}"))]
        else:
            raw = values.get(f"q{q.id}")
            out[q.id] = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
    return out


def submit_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    survey = _survey_arg(ctx, args)
    values = dict(msg.form_values or {})
    if not values:
        return answer_command(ctx, msg, args)
    _open_for(ctx, survey)
    try:
        _, replaced = store.record_answer(ctx.session, survey, ctx.actor, _answers_from(ctx, survey, values),
                                          ctx.now().date())
    except SurveyError as error:
        raise _refuse(error) from None
    if replaced:
        return ctx.reply("surveys.answer_replaced", private=True, title=survey.title)
    key = "surveys.thanks_anonymous" if survey.anonymous else "surveys.thanks_named"
    return ctx.reply(key, private=True, title=survey.title)


def decline_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    survey = _survey_arg(ctx, args)
    try:
        store.decline(ctx.session, survey, ctx.actor.id, ctx.now().date())
    except SurveyError as error:
        raise _refuse(error) from None
    return ctx.reply("surveys.declined", private=True, title=survey.title)


# Managing -----------------------------------------------------------------------------------
def _owned(ctx: Ctx, args: str) -> Survey:
    survey = _survey_arg(ctx, args)
    if survey.author_id != ctx.actor.id and not ctx.is_admin:
        raise UserError("surveys.error.not_yours", id=survey.id)
    return survey


def list_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    mine = store.visible_to(ctx.session, ctx.actor, ctx.is_admin)
    if not mine:
        return ctx.reply("surveys.list_empty", private=True)
    lines = []
    for survey in mine[:30]:
        c = store.counts(ctx.session, survey.id)
        total = sum(c.values())
        lines.append(ctx.t(f"surveys.list_line_{survey.status}", id=survey.id, title=survey.title,
                           answered=c["answered"], count=total, day=survey.closed_on or survey.closes_on))
    card = Card(title=ctx.t("surveys.list_title", count=len(mine)), body="\n".join(lines),
                footer=ctx.t("surveys.list_footer"))
    return ctx.reply("surveys.list", private=True, card=card, count=len(mine))


def close_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    survey = _owned(ctx, args)
    if not store.close(ctx.session, survey, ctx.now().date()):
        raise UserError("surveys.error.already_closed", id=survey.id, day=survey.closed_on or survey.closes_on)
    ctx.audit("survey.close", f"#{survey.id}")
    return ctx.reply("surveys.closed", private=True, id=survey.id, title=survey.title,
                     count=store.counts(ctx.session, survey.id)["answered"])


def delete_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    survey = _owned(ctx, args)
    survey_id, title = survey.id, survey.title
    store.delete(ctx.session, survey)
    ctx.audit("survey.delete", f"#{survey_id}")
    return ctx.reply("surveys.deleted", private=True, id=survey_id, title=title)


def register(r: Registry) -> None:
    g = "surveys"
    r.command(CommandSpec("survey new", "sondage nouveau", new_command, "surveys.new_help", "surveys.new_usage",
                          aliases=("survey create form",), group=g))
    r.command(CommandSpec("survey create", "sondage créer", create_command, "surveys.create_help", group=g, hidden=True))
    r.command(CommandSpec("survey answer", "sondage répondre", answer_command, "surveys.answer_help", "surveys.id_usage",
                          group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("survey submit", "sondage envoyer", submit_command, "surveys.answer_help", "surveys.id_usage",
                          group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("survey decline", "sondage refuser", decline_command, "surveys.decline_help",
                          "surveys.id_usage", group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("survey list", "sondage liste", list_command, "surveys.list_help", "surveys.list_usage",
                          aliases=("surveys", "sondages"), group=g))
    r.command(CommandSpec("survey close", "sondage fermer", close_command, "surveys.close_help", "surveys.id_usage",
                          aliases=("sondage clore",), group=g, needs_args=True))
    r.command(CommandSpec("survey delete", "sondage supprimer", delete_command, "surveys.delete_help",
                          "surveys.id_usage", group=g, needs_args=True))
    r.job(Job("surveys.send", timedelta(minutes=1), jobs.send))
    r.job(Job("surveys.close", timedelta(minutes=5), jobs.close_due))
    if importlib.util.find_spec("handlers.surveys.results") is not None:  # the results helper's module
        results_register = getattr(importlib.import_module("handlers.surveys.results"), "register", None)
        if callable(results_register):
            results_register(r)
