"""Survey results (issue 18): what `survey results N` shows its author — answers, response rate,
distribution, average, eNPS, breakdowns with small groups hidden and their complements withheld,
written answers only from the minimum — what an outsider gets (nothing, and who can), the
chart and the CSV export."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select, update

from bot.core import Bot
from bot.survey_charts import Bar, render_distribution
from bot.types import Outbound
from store import survey_results, surveys
from store.analytics import Viewer
from store.models.core import Person
from store.models.surveys import SurveyAnswer, SurveyAnswerSet, SurveyParticipant
from store.surveys import QuestionDraft
from tests.test_ideas_support import Driver, everything, keys, outbound

SCALE = [5, 4, 4, 3, 5, 2, 4, 4, 3, 5]
ENPS = [10, 10, 9, 8, 3, None, 9, 7, 6, 10]  # the sixth skipped the question
CHOICE = [0, 0, 1, 0, 2, 1, 0, 1, 0, 0]
TEXTS = ["Plus de canaux par projet", "Très utile", "Les rappels aident", "RAS", "Trop de notifications",
         "Bien", "Super", "Correct", "Pratique", "À améliorer"]


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def pid(d: Driver, handle: str) -> int:
    with d.session() as s:
        return s.scalar(select(Person.id).where(Person.handle == handle))


def make_survey(d: Driver, departments: list[str], *, author: str = "julien", audience: tuple[str, str] = ("all", "")) -> int:
    """A survey to `audience` with four questions and one answer set per entry of `departments`
    (its department label; every set is a contributor in Paris), written as rows, then tallied."""
    today = d.clock.now().date()
    with d.session() as s:
        survey = surveys.create(s, author_id=pid(d, author), title="Causette, un mois après", questions=[
            QuestionDraft("scale5", "Êtes-vous satisfait de Causette ?"),
            QuestionDraft("enps", "Recommanderiez-vous Causette à un collègue ?"),
            QuestionDraft("single", "Où l'utilisez-vous le plus ?", ("Slack", "Teams", "Email")),
            QuestionDraft("text", "Une suggestion ?")], audience_kind=audience[0], audience_value=audience[1],
            anonymous=True, closes_on=today + timedelta(days=7), today=today)
        qs = surveys.questions(s, survey.id)
        for i, department in enumerate(departments):
            token = f"{survey.id:08x}{i:024x}"
            s.add(SurveyAnswerSet(token=token, survey_id=survey.id, user_type="contributor", department=department,
                                  site="Paris"))
            s.flush()
            values = [SCALE[i], ENPS[i], CHOICE[i]]
            for q, value in zip(qs[:3], values):
                if value is not None:
                    s.add(SurveyAnswer(answer_set=token, question_id=q.id, survey_id=survey.id, value=value))
            s.add(SurveyAnswer(answer_set=token, question_id=qs[3].id, survey_id=survey.id, text=TEXTS[i]))
        answered = list(s.scalars(select(SurveyParticipant.id).where(SurveyParticipant.survey_id == survey.id)
                                  .order_by(SurveyParticipant.id).limit(len(departments))))
        s.execute(update(SurveyParticipant).where(SurveyParticipant.id.in_(answered)).values(state="answered"))
        s.flush()
        surveys.rebuild_tallies(s, survey.id)  # answers written in bulk, not through record_answer: counted again
        return survey.id


def test_six_answers_show_distribution_average_enps_and_segments_with_small_groups_hidden(d: Driver) -> None:
    number = make_survey(d, ["Sales"] * 4 + [""] * 2)
    effects = d.say("julien", "dm", f"survey results {number}")
    assert keys(effects)[0] == "survey_results.report"
    assert keys(effects)[1:] == ["survey_results.chart_of"] * 3  # scale, eNPS, choice: one chart each
    main = outbound(effects, "survey_results.report").reply
    text = everything(effects)
    with d.session() as s:
        asked = sum(surveys.counts(s, number).values())
    assert asked > 50 and f"6 réponses sur {asked} personnes interrogées : taux de réponse {round(600 / asked)} %" in main.card.body
    assert "Slack : 3 (50 %)" in text and "Teams : 2 (33 %)" in text and "Email : 1 (17 %)" in text  # julien reads French
    assert "Moyenne : 3,8 sur 5" in text            # 23 / 6
    assert "eNPS : 40" in text                       # 3 promoters, 1 detractor of 5: the skip is not counted
    assert "contributeurs : 6 réponses — Q1 : moyenne 3,8; Q2 : eNPS 40" in text
    assert "Sales : moins de 5" in text and "autre ou non renseigné : moins de 5" in text  # 4, and 2 hidden with it
    assert "Paris : 6 réponses" in text
    for written in TEXTS[:6]:
        assert written in text
    assert all(isinstance(e, Outbound) and e.reply.private for e in effects)
    charts = [e.reply.picture for e in effects if e.reply.picture is not None]
    assert len(charts) == 3 and charts[0].png.startswith(b"\x89PNG")
    assert "6 réponses" in charts[0].alt


def test_a_segment_of_four_is_fewer_than_five_and_its_complement_hidden(d: Driver) -> None:
    number = make_survey(d, ["Sales"] * 4 + ["Marketing"] * 6)
    with d.session() as s:
        found = survey_results.results(s, Viewer(pid(d, "julien")), number)
    assert found is not None and found.answers == 10
    cells = {c.label: c for c in found.segments["department"]}
    assert (cells["Sales"].size, cells["Sales"].small) == (None, True)
    assert (cells["Marketing"].size, cells["Marketing"].small) == (None, False)  # 6, withheld: 10 − 6 would give 4
    assert all(score is None for score in cells["Marketing"].scores.values())
    assert found.segments["site"][0].size == 10
    text = everything(d.say("julien", "dm", f"sondage résultats {number}"))
    assert "Marketing : masqué" in text and "Sales : moins de 5" in text
    assert "6 réponses" not in text.split("Par service")[1].split("Par site")[0]


def test_under_five_answers_nothing_but_the_count_and_no_written_answer(d: Driver) -> None:
    number = make_survey(d, ["Sales"] * 4)
    effects = d.say("julien", "dm", f"survey results {number}")
    assert keys(effects) == ["survey_results.report"]  # no chart
    text = everything(effects)
    assert "4 réponses" in text and "Moins de 5 réponses pour l'instant" in text
    assert not any(written in text for written in TEXTS[:4])
    assert "Slack" not in text and "eNPS:" not in text
    with d.session() as s:
        found = survey_results.results(s, Viewer(pid(d, "julien")), number)
    assert found is not None and not found.enough and all(q.texts is None and not q.counts for q in found.questions)


def test_an_outsider_is_refused_with_who_can_and_the_store_gives_nothing(d: Driver) -> None:
    number = make_survey(d, ["Sales"] * 6)
    refused = d.say("thomas", "dm", f"survey results {number}")
    assert keys(refused) == ["error.not_allowed"]
    text = everything(refused)
    assert "Julien" in text and "camille" in text and "Slack" not in text
    assert keys(d.say("thomas", "dm", f"survey export {number}")) == ["error.not_allowed"]
    thomas = Viewer(pid(d, "thomas"))
    with d.session() as s:
        assert survey_results.results(s, thomas, number) is None
        assert survey_results.export_rows(s, thomas, number) is None
        assert survey_results.results(s, Viewer(pid(d, "thomas"), admin=True), number) is not None
    assert keys(d.say("camille", "dm", f"survey results {number}"))[0] == "survey_results.report"  # an admin
    assert keys(d.say("julien", "dm", "survey results 999")) == ["survey_results.unknown"]
    assert keys(d.say("julien", "dm", "survey results 99999999999999")) == ["survey_results.which"]  # not a number we keep
    assert keys(d.say("julien", "dm", "survey results")) == ["survey_results.which"]


def test_the_referent_of_the_audience_channel_reads_a_channel_survey(d: Driver) -> None:
    with d.session() as s:
        from store.models.core import Conversation
        sales = s.scalar(select(Conversation.id).where(Conversation.name == "sales"))
    number = make_survey(d, ["Sales"] * 5, author="julien", audience=("channel", str(sales)))
    assert keys(d.say("sophie", "dm", f"survey results {number}"))[0] == "survey_results.report"
    other = make_survey(d, ["Sales"] * 5, author="julien")  # everyone: sophie is référent of #sales only
    assert keys(d.say("sophie", "dm", f"survey results {other}")) == ["error.not_allowed"]


def test_the_export_is_aggregated_csv_with_a_bom(d: Driver) -> None:
    number = make_survey(d, ["Sales"] * 4 + ["Marketing"] * 6)
    effects = d.say("julien", "dm", f"survey export {number}")
    reply = outbound(effects, "survey_results.exported").reply
    assert reply.attachment is not None
    name, content = reply.attachment
    assert name.endswith(".csv") and content.startswith("\ufeff".encode("utf-8"))
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0]["answers"] == "10"
    enps_row = next(r for r in rows if r["kind"] == "enps" and not r["option"] and not r["breakdown"])
    assert enps_row["enps"] == "33"  # 9 answered: 5 promoters, 2 detractors
    departments = {r["segment"]: r["answers"] for r in rows if r["breakdown"] == "department" and r["kind"] == "scale5"}
    assert departments == {"Marketing": "withheld", "Sales": "<5"}
    assert not any(written in content.decode("utf-8-sig") for written in TEXTS)  # never a written answer


def test_the_distribution_chart_is_a_deterministic_png_in_the_readers_language(bot: Bot) -> None:
    from functools import partial

    t = partial(bot.services.prompts.t, "fr")
    bars = [Bar("1", 2), Bar("2", None), Bar("3", 7), Bar("4", 12), Bar("5", 5)]
    one = render_distribution(bars, title="Êtes-vous satisfait ?", answers=30, translate=t, locale="fr")
    two = render_distribution(bars, title="Êtes-vous satisfait ?", answers=30, translate=t, locale="fr")
    assert one.png == two.png and one.png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(one.png)).size == (800, 420)
    assert "30 réponses" in one.alt and "Le plus choisi : 4 (12)" in one.alt and "1 option non affichée" in one.alt
