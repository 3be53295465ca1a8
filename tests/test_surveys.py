"""Pulse surveys (issue 18): the form and templates, who may create, the invitation DMs at a
working hour of each person's time zone, answering, declining, reminders to non-responders
only, closing, list/close/delete, privacy, and the bad inputs."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core import Bot
from bot.types import Outbound
from store.models.core import Person
from store.models.surveys import Survey, SurveyAnswer, SurveyAnswerSet, SurveyNamedAnswer, SurveyParticipant
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


QUESTIONS = "scale: How happy are you?\nenps: Would you recommend us?\nsingle: Best day? | Monday | Friday\n" \
            "multiple: Which tools? | Mail | Chat | Wiki\ntext: Anything else?"


def form(**over: str) -> dict[str, str]:
    values = {"title": "Pulse", "questions": QUESTIONS, "audience": "channel", "audience_value": "sales",
              "anonymous": "yes", "closes": "2026-11-30", "reminders": "1", "recurrence": "none"}
    values.update(over)
    return values


def create(d: Driver, who: str = "julien", **over: str) -> list:
    return d.say(who, "dm", "survey create", form_values=form(**over))


def dms(effects: list, key: str) -> dict[str, Outbound]:
    return {e.to.id: e for e in effects if isinstance(e, Outbound) and e.reply.key == key}


def answer_values(d: Driver, survey_id: int = 1, scale: str = "4", **extra: str) -> dict[str, str]:
    with d.session() as s:
        from store.surveys import questions
        qs = questions(s, survey_id)
    values = {f"q{qs[0].id}": scale}
    if len(qs) > 1:
        values.update({f"q{qs[1].id}": "9", f"q{qs[2].id}": "1", f"q{qs[3].id}_0": "true", f"q{qs[3].id}_2": "true",
                       f"q{qs[4].id}": "More coffee"})
    values.update(extra)
    return values


def sales_members(d: Driver) -> list[str]:
    with d.session() as s:
        rows = s.execute(select(Person.handle).join(SurveyParticipant, SurveyParticipant.person_id == Person.id)).all()
    return sorted(h for (h,) in rows)


def test_animator_creates_a_survey_and_each_member_gets_one_dm_in_their_language(d: Driver) -> None:
    effects = create(d)
    assert keys(effects) == ["surveys.created_anonymous"]
    assert "13 personnes" in effects[0].reply.text and "lun. 30 nov. 2026" in effects[0].reply.text  # Julien reads French
    sent = dms(d.job("surveys.send"), "surveys.invite")
    assert sorted(sent) == sales_members(d) and len(sent) == 13
    sophie = sent["sophie"].reply  # French speaker
    assert sophie.card is not None and "Sondage" in sophie.card.title
    assert [a.command for a in sophie.card.actions] == ["survey answer 1", "survey decline 1"]
    assert "Anonyme" in sophie.card.body
    assert dms(d.job("surveys.send"), "surveys.invite") == {}  # once


def test_invitations_wait_for_a_working_hour_in_each_time_zone(d: Driver) -> None:
    d.say("camille", "dm", "survey create", form_values=form(audience="all", audience_value=""))
    first = dms(d.job("surveys.send"), "surveys.invite")  # Monday 09:00 UTC: 04:00 in Montréal
    with d.session() as s:
        montreal = set(s.scalars(select(Person.handle).where(Person.site == "Montréal")))
    assert montreal and not montreal & set(first) and len(first) == 60 - len(montreal)
    d.clock.advance(timedelta(hours=5))  # 09:00 in Montréal
    later = dms(d.job("surveys.send"), "surveys.invite")
    assert set(later) == montreal


def test_answer_in_one_click_and_one_submit_and_refusals(d: Driver) -> None:
    create(d)
    d.job("surveys.send")
    opened = d.say("thomas", "dm", "survey answer 1")
    assert keys(opened) == ["surveys.answer_intro_anonymous"]
    questionnaire = opened[0].reply.form
    assert questionnaire is not None and questionnaire.submit_command == "survey submit 1"
    assert questionnaire.title == "n° 1 · anonyme"  # Thomas reads French; 24 characters at most (Slack)
    assert questionnaire.fields[0].label.startswith("Anonyme : vos réponses sont gardées sans votre nom. — 1. How happy")
    assert keys(d.say("thomas", "dm", "survey submit 1", form_values=answer_values(d))) == ["surveys.thanks_anonymous"]
    assert keys(d.say("thomas", "dm", "survey submit 1", form_values=answer_values(d))) == ["surveys.error.twice"]
    assert keys(d.say("thomas", "dm", "survey answer 1")) == ["surveys.error.twice"]
    assert keys(d.say("hugo", "dm", "survey answer 1")) == ["surveys.error.not_asked"]  # a forwarded button
    assert keys(d.say("hugo", "dm", "survey submit 1", form_values=answer_values(d))) == ["surveys.error.not_asked"]
    bad = d.say("chloe", "dm", "survey submit 1", form_values=answer_values(d, scale="7"))
    assert keys(bad) == ["surveys.error.range"] and "1 à 5" in bad[0].reply.text
    with d.session() as s:
        assert s.scalar(select(func.count()).select_from(SurveyAnswerSet)) == 1
        stored = {a.value for a in s.scalars(select(SurveyAnswer))}
        assert {4, 9, 1} <= stored
        assert s.scalar(select(func.count()).select_from(SurveyNamedAnswer)) == 0


def test_named_survey_says_so_and_a_second_answer_replaces_the_first(d: Driver) -> None:
    create(d, anonymous="")
    sent = dms(d.job("surveys.send"), "surveys.invite")
    assert "Not anonymous: your name is kept" in everything([sent["james"]])
    opened = d.say("james", "dm", "survey answer 1")
    named = opened[0].reply.form
    assert named is not None and named.title == "#1 · NOT anonymous"
    assert named.fields[0].label.startswith("NOT anonymous: your name is kept with your answers — 1.")
    assert keys(d.say("james", "dm", "survey submit 1", form_values=answer_values(d, scale="2"))) == ["surveys.thanks_named"]
    assert keys(d.say("james", "dm", "survey submit 1", form_values=answer_values(d, scale="5"))) == ["surveys.answer_replaced"]
    with d.session() as s:
        assert s.scalar(select(func.count()).select_from(SurveyAnswerSet)) == 1
        first_question = min(s.scalars(select(SurveyAnswer.question_id)))
        assert s.scalar(select(SurveyAnswer.value).where(SurveyAnswer.question_id == first_question)) == 5


def test_decline_and_reminder_only_to_those_who_have_not_answered(d: Driver) -> None:
    create(d, closes="2026-11-27")
    d.job("surveys.send")
    d.say("thomas", "dm", "survey submit 1", form_values=answer_values(d))
    assert keys(d.say("chloe", "dm", "survey decline 1")) == ["surveys.declined"]
    assert keys(d.say("chloe", "dm", "survey answer 1")) == ["surveys.error.declined"]
    assert dms(d.job("surveys.send"), "surveys.reminder") == {}  # not the day before closing yet
    d.clock.advance(timedelta(days=3))  # Thursday 26th, the day before closing
    reminded = dms(d.job("surveys.send"), "surveys.reminder")
    assert set(reminded) == set(sales_members(d)) - {"thomas", "chloe"}
    assert dms(d.job("surveys.send"), "surveys.reminder") == {}  # once


def test_no_reminder_when_set_to_zero(d: Driver) -> None:
    create(d, closes="2026-11-27", reminders="0")
    d.job("surveys.send")
    d.clock.advance(timedelta(days=3))
    assert dms(d.job("surveys.send"), "surveys.reminder") == {}


def test_closing_job_closes_once_tells_the_author_and_late_answers_are_refused(d: Driver) -> None:
    create(d, closes="2026-11-24")
    d.job("surveys.send")
    d.say("thomas", "dm", "survey submit 1", form_values=answer_values(d))
    assert d.job("surveys.close") == []  # still open on its closing day
    d.clock.advance(timedelta(days=2))
    closed = d.job("surveys.close")
    assert keys(closed) == ["surveys.closed_notice"] and closed[0].to.id == "julien"
    assert d.job("surveys.close") == []
    late = d.say("nathan", "dm", "survey answer 1")
    assert keys(late) == ["surveys.error.closed"] and "mer. 25 nov. 2026" in late[0].reply.text  # Nathan reads French
    assert dms(d.job("surveys.send"), "surveys.invite") == {}


def test_recurring_survey_opens_its_next_round_when_it_closes(d: Driver) -> None:
    create(d, closes="2026-11-24", recurrence="weekly")
    d.clock.advance(timedelta(days=2))
    assert keys(d.job("surveys.close")) == ["surveys.closed_notice", "surveys.recurred"]
    with d.session() as s:
        following = s.scalar(select(Survey).where(Survey.parent_id == 1))
        assert following is not None and following.status == "open" and following.anonymous


def test_who_may_create_and_for_which_audience(d: Driver) -> None:
    assert keys(d.say("thomas", "dm", "survey new")) == ["surveys.error.not_allowed"]
    assert keys(create(d, "thomas")) == ["surveys.error.not_allowed"]
    assert keys(create(d, audience="all", audience_value="")) == ["surveys.error.audience_not_yours"]
    assert keys(create(d, audience_value="engineering")) == ["surveys.error.audience_not_yours"]
    opened = d.say("julien", "dm", "survey new")
    assert keys(opened) == ["surveys.form_intro"] and opened[0].reply.form.submit_command == "survey create"
    assert keys(create(d, "camille", audience="department", audience_value="hr")) == ["surveys.created_anonymous"]


def test_templates_in_english_and_french(d: Driver) -> None:
    with d.session() as s:
        s.scalar(select(Person).where(Person.handle == "camille")).locale = "en"
    enps = d.say("camille", "dm", "survey new template enps").pop().reply.form
    assert enps is not None and "enps: How likely are you to recommend working here" in enps.fields[1].value
    french = d.say("sophie", "dm", "sondage nouveau modèle satisfaction").pop().reply.form
    assert french is not None and french.fields[0].value == "Satisfaction avec Causette"
    assert "échelle: Dans l'ensemble" in french.fields[1].value
    functions = d.say("camille", "dm", "survey new template functions").pop().reply.form
    assert functions is not None and "multiple: Which functions do you use? | Finding an expert" in functions.fields[1].value
    assert keys(d.say("camille", "dm", "survey new template weather")) == ["surveys.error.template"]
    # the template's text, sent back as is, makes a survey
    values = {f.name: f.value for f in functions.fields} | {"audience": "channel", "audience_value": "general"}
    assert keys(d.say("camille", "dm", "survey create", form_values=values)) == ["surveys.created_anonymous"]


@pytest.mark.parametrize("over, key", [
    ({"questions": ""}, "surveys.error.no_question"),
    ({"questions": "\n".join(f"text: question {i}" for i in range(50))}, "surveys.error.too_many"),
    ({"questions": "rating: how?"}, "surveys.error.question"),
    ({"questions": "\n".join("multiple: Which? | " + " | ".join(f"c{j}" for j in range(10)) for _ in range(6))},
     "surveys.error.too_long"),
    ({"questions": "single: Only one? | yes"}, "surveys.error.choices"),
    ({"closes": "2026-11-20"}, "surveys.error.past"),
    ({"closes": "next tuesday"}, "surveys.error.closes"),
    ({"audience_value": "nowhere"}, "surveys.error.channel"),
    ({"reminders": "5"}, "surveys.error.reminders"),
])
def test_bad_survey_forms_are_refused_clearly(d: Driver, over: dict[str, str], key: str) -> None:
    effects = create(d, "camille", **over)
    assert keys(effects) == [key]
    with d.session() as s:
        assert s.scalar(select(func.count()).select_from(Survey)) == 0


def test_an_anonymous_survey_of_fewer_people_than_the_minimum_is_refused(d: Driver) -> None:
    refused = create(d, "camille", audience_value="direction")
    assert keys(refused) == ["surveys.error.audience_small"] and "4 personnes" in refused[0].reply.text
    assert keys(create(d, "camille", audience_value="direction", anonymous="")) == ["surveys.created_named"]


def test_list_close_delete_for_the_author_and_admins_only(d: Driver) -> None:
    create(d)
    d.job("surveys.send")
    d.say("thomas", "dm", "survey submit 1", form_values=answer_values(d))
    listed = d.say("julien", "dm", "survey list")
    assert keys(listed) == ["surveys.list"] and "1 sur 13 personnes ont répondu" in everything(listed)
    assert keys(d.say("thomas", "dm", "survey list")) == ["surveys.list_empty"]
    assert keys(d.say("sophie", "dm", "survey close 1")) == ["surveys.error.not_yours"]
    assert keys(d.say("julien", "dm", "survey close 1")) == ["surveys.closed"]
    assert keys(d.say("julien", "dm", "survey close 1")) == ["surveys.error.already_closed"]
    assert keys(d.say("thomas", "dm", "survey delete 1")) == ["surveys.error.not_yours"]
    assert keys(d.say("camille", "dm", "survey delete 1")) == ["surveys.deleted"]
    assert keys(d.say("camille", "dm", "survey delete 1")) == ["surveys.error.not_found"]
    with d.session() as s:
        for model in (Survey, SurveyParticipant, SurveyAnswerSet, SurveyAnswer):
            assert s.scalar(select(func.count()).select_from(model)) == 0


def test_privacy_says_what_is_stored_about_an_answer(d: Driver) -> None:
    text = everything(d.say("james", "dm", "privacy"))
    assert "random number" in text and "no name and no time" in text and "5 people" in text
    assert "numéro tiré au hasard" in everything(d.say("thomas", "dm", "confidentialité"))


def test_the_largest_questionnaire_allowed_fits_a_slack_modal_whole(d: Driver) -> None:
    from adapters.slack.render import MAX_BLOCKS_VIEW, render_modal
    lines = ["multiple: Which? | " + " | ".join(f"c{j}" for j in range(9)) for _ in range(5)]
    lines += [f"scale: Question {i}" for i in range(5)]
    assert keys(d.say("camille", "dm", "survey create", form_values=form(questions="\n".join(lines),
                                                                       audience_value="general"))) == ["surveys.created_anonymous"]
    questionnaire = d.say("james", "dm", "survey answer 1")[0].reply.form
    assert questionnaire is not None and len(questionnaire.fields) == 50
    modal = render_modal(questionnaire, {}, lambda key, **p: key)
    assert len(modal["blocks"]) == 50 <= MAX_BLOCKS_VIEW
    assert modal["title"]["text"] == "#1 · anonymous"


def test_a_department_referent_surveys_their_department_only(d: Driver) -> None:
    assert keys(d.say("camille", "dm", "role add @sophie referent department Sales")) == ["roles.added"]
    assert keys(create(d, "sophie", audience="department", audience_value="sales")) == ["surveys.created_anonymous"]
    assert keys(create(d, "sophie", audience="site", audience_value="Lyon")) == ["surveys.error.audience_not_yours"]
    assert keys(create(d, "sophie", audience="all", audience_value="")) == ["surveys.error.audience_not_yours"]
