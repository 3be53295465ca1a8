"""`survey results N` (`sondage résultats N`) and `survey export N` (`sondage export N`): a
survey's results for its author, the référents of its audience and admins.

Every figure, the small-group suppression and who may read come from store/survey_results.py
(an outsider gets None and is refused here, naming who can). Replies are private: the card
(answers, response rate, per question the distribution, average, eNPS, the breakdowns by kind
of member, department and site, written answers shuffled), then one picture per charted
question (bot/survey_charts.py). The export is a CSV of aggregated rows (UTF-8 with BOM)."""
from __future__ import annotations

import csv
import io
from typing import Sequence

from babel.lists import format_list

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.survey_charts import Bar, render_distribution
from bot.types import Card, Effect, IncomingMessage, Reply
from store import survey_results as store
from store.analytics import Viewer
from store.models.surveys import Survey
from store.survey_results import QuestionResult, Results, Segment

MAX_SCORE = {"scale5": 5, "enps": 10}
TEXT_MAX = 300  # characters of a written answer in the card


def _viewer(ctx: Ctx) -> Viewer:
    return Viewer(ctx.actor.id, ctx.is_admin)


def _survey(ctx: Ctx, args: str, usage_key: str) -> Survey:
    number, _rest = ctx.numbered(args)
    if number is None:
        raise UserError("survey_results.which", usage=ctx.t(usage_key))
    survey = ctx.session.get(Survey, number) if 0 < number < 2**31 else None  # a database integer
    if survey is None:
        raise UserError("survey_results.unknown", id=number)
    if not store.may_read(ctx.session, _viewer(ctx), survey):
        raise _refuse(ctx, survey, "survey_results.action_read" if usage_key == "survey_results.usage"
                      else "survey_results.action_export")
    return survey


def _refuse(ctx: Ctx, survey: Survey, action_key: str) -> UserError:
    labelled: dict[str, str] = {}
    for person in store.who_may_read(ctx.session, survey)[:8]:
        role = ctx.t("survey_results.role_author") if person.id == survey.author_id else ctx.t("role.one.referent")
        labelled.setdefault(ctx.name(person), role)
    for admin in ctx.settings.admins:
        labelled.setdefault(admin, ctx.t("role.one.admin"))
    who = [ctx.t("error.person_role", name=name, role=role) for name, role in list(labelled.items())[:8]]
    roles = [ctx.t("survey_results.role_author"), ctx.t("role.referent"), ctx.t("role.admin")]
    return UserError("error.not_allowed", action=ctx.t(action_key, id=survey.id),
                     roles=format_list(roles, style="or", locale=ctx.locale), who=", ".join(who) or ctx.t("error.no_one"))


def _size(ctx: Ctx, cell: Segment, minimum: int) -> str:
    if cell.size is not None:
        return ctx.t("survey_results.segment_size", count=cell.size)
    return ctx.t("survey_results.fewer", min=minimum) if cell.small else ctx.t("survey_results.withheld")


def _label(ctx: Ctx, cell: Segment) -> str:
    if not cell.label:
        return ctx.t("survey_results.other")
    if cell.dimension == "user_type" and cell.label in store.USER_TYPES:
        return ctx.t(f"survey_results.type.{cell.label}")
    return ctx.plain(cell.label)


def _question_body(ctx: Ctx, q: QuestionResult, minimum: int, enough: bool) -> str:
    if q.kind == "text":
        if not enough:
            return ctx.t("survey_results.texts_hidden", min=minimum)
        if not q.texts:
            return ctx.t("survey_results.texts_none")
        lines = [ctx.t("survey_results.text_line", text=ctx.plain(" ".join(text.split()))[:TEXT_MAX]) for text in q.texts]
        return "\n".join([*lines, ctx.t("survey_results.texts_note")])
    if not q.shown:
        return ctx.t("survey_results.question_hidden", min=minimum)
    lines = [ctx.t("survey_results.answered", count=q.answered)]
    for option, count in zip(q.options, q.counts):
        lines.append(ctx.t("survey_results.option_line", option=ctx.plain(option), count=count,
                           percent=round(100 * count / q.answered) if q.answered else 0))
    if q.average is not None:
        lines.append(ctx.t("survey_results.average", value=round(q.average, 1), max=MAX_SCORE[q.kind]))
    if q.enps is not None:
        lines.append(ctx.t("survey_results.enps", value=q.enps))
    return "\n".join(lines)


def _segments_body(ctx: Ctx, found: Results, cells: Sequence[Segment]) -> str:
    scored = [q for q in found.questions if q.kind in MAX_SCORE and q.shown]
    lines = []
    for cell in cells:
        scores = []
        if cell.size is not None:
            for q in scored:
                value = cell.scores.get(q.question_id)
                name = ctx.t("survey_results.short_question", position=q.position)
                if value is None:
                    scores.append(ctx.t("survey_results.score_hidden", question=name))
                elif q.kind == "enps":
                    scores.append(ctx.t("survey_results.score_enps", question=name, value=value))
                else:
                    scores.append(ctx.t("survey_results.score_average", question=name, value=round(float(value), 1)))
        lines.append(ctx.t("survey_results.segment_line", label=_label(ctx, cell), size=_size(ctx, cell, found.min_group),
                           scores=(" — " + "; ".join(scores)) if scores else ""))
    return "\n".join(lines)


def card(ctx: Ctx, found: Results) -> Card:
    survey = found.survey
    if found.rate is None:
        summary = ctx.t("survey_results.summary_no_rate", answers=found.answers)
    else:
        summary = ctx.t("survey_results.summary", answers=found.answers, asked=found.asked, rate=round(found.rate * 100))
    sections: list[tuple[str, str]] = []
    if not found.enough:
        summary += "\n" + ctx.t("survey_results.too_few", min=found.min_group)
    else:
        for q in found.questions:
            sections.append((ctx.t("survey_results.question", position=q.position, text=ctx.plain(q.text)),
                             _question_body(ctx, q, found.min_group, found.enough)))
        for dimension, cells in found.segments.items():
            sections.append((ctx.t("survey_results.section_by", dimension=ctx.t(f"survey_results.dimension.{dimension}")),
                             _segments_body(ctx, found, cells)))
    return Card(title=ctx.t("survey_results.title", title=ctx.plain(survey.title), id=survey.id), body=summary,
                sections=tuple(sections), footer=ctx.t("survey_results.footer", min=found.min_group))


def charts(ctx: Ctx, found: Results) -> list[Reply]:
    """One private reply with a picture per question shown (scale, eNPS, choices)."""
    out = []
    translate = ctx.translator(ctx.locale)
    for q in found.questions:
        if q.kind not in store.CHART_KINDS or not q.shown:
            continue
        picture = render_distribution([Bar(o, c) for o, c in zip(q.options, q.counts)], title=ctx.plain(q.text),
                                      answers=q.answered, translate=translate, locale=ctx.locale)
        out.append(ctx.reply("survey_results.chart_of", private=True, picture=picture, position=q.position,
                             text=ctx.plain(q.text)))
    return out


def results_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    survey = _survey(ctx, args, "survey_results.usage")
    found = store.results(ctx.session, _viewer(ctx), survey.id)
    assert found is not None  # may_read said yes
    main = ctx.reply("survey_results.report", private=True, card=card(ctx, found), id=survey.id,
                     title=ctx.plain(survey.title), answers=found.answers)
    return [ctx.answer(main), *(ctx.answer(r) for r in charts(ctx, found))]


def export_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    survey = _survey(ctx, args, "survey_results.export_usage")
    rows = store.export_rows(ctx.session, _viewer(ctx), survey.id)
    assert rows is not None
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(store.EXPORT_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    content = "\ufeff".encode("utf-8") + buffer.getvalue().encode("utf-8")  # BOM: Excel reads accents right
    ctx.audit("survey.export", f"#{survey.id} {len(rows)} rows")
    return ctx.reply("survey_results.exported", private=True, attachment=(f"causette-survey-{survey.id}.csv", content),
                     id=survey.id)


def register(r: Registry) -> None:
    g = "surveys"
    r.command(CommandSpec("survey results", "sondage résultats", results_command, "survey_results.help",
                          "survey_results.usage", aliases=("survey result", "sondage resultats"), group=g))
    r.command(CommandSpec("survey export", "sondage export", export_command, "survey_results.export_help",
                          "survey_results.export_usage", aliases=("sondage exporter",), group=g))
