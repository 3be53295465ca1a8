"""Anonymity by construction (issue 18): after an anonymous survey, the database itself holds
nothing that joins a person to an answer — the participants and answer tables share no column
but the survey (and workspace), the named-answers link table is empty, answer-set ids are
random tokens, answers carry no time, and the segment labels are coarse."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import OperationalError

from bot.core import Bot
from store.models.core import Person
from store.models.surveys import SurveyAnswer, SurveyAnswerSet, SurveyNamedAnswer, SurveyParticipant
from tests.test_ideas_support import Driver
from tests.test_surveys import answer_values, create

RESPONDENTS = ("thomas", "chloe", "nathan", "sarah", "james", "charlotte")


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def _answer_all(d: Driver) -> None:
    create(d, closes="2026-11-25")
    d.job("surveys.send")
    for i, who in enumerate(RESPONDENTS):
        d.say(who, "dm", "survey submit 1", form_values=answer_values(d, scale=str(1 + i % 5)))
        d.clock.advance(timedelta(minutes=7))


def test_no_column_can_join_a_person_to_an_anonymous_answer(d: Driver) -> None:
    _answer_all(d)
    inspector = inspect(d.bot.services.db.engine)
    columns = {t: {c["name"] for c in inspector.get_columns(t)}
               for t in ("survey_participants", "survey_answer_sets", "survey_answers", "survey_named_answers")}
    answer_side = columns["survey_answer_sets"] | columns["survey_answers"]
    assert columns["survey_participants"] & answer_side == {"survey_id", "tenant"}
    assert not {"person_id", "created_at", "answered_at", "id"} & answer_side  # no person, no time, no sequence
    for table in ("survey_answer_sets", "survey_answers"):  # no date or time column of any kind
        assert not [c for c in inspector.get_columns(table) if "DATE" in str(c["type"]).upper() or "TIME" in str(c["type"]).upper()]
    with d.session() as s:
        assert s.scalars(select(SurveyNamedAnswer)).all() == []
        tokens = list(s.scalars(select(SurveyAnswerSet.token)))
        assert len(tokens) == len(RESPONDENTS) == len(set(tokens))
        assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
        # The only join there is, on the survey, pairs every participant with every answer set.
        pairs = s.execute(select(SurveyParticipant.person_id, SurveyAnswerSet.token).join(
            SurveyAnswerSet, SurveyAnswerSet.survey_id == SurveyParticipant.survey_id)
            .where(SurveyParticipant.state == "answered")).all()
        per_person = Counter(p for p, _ in pairs)
        assert len(per_person) == len(RESPONDENTS) and set(per_person.values()) == {len(RESPONDENTS)}
        # Participants keep the day only.
        assert {type(day).__name__ for day in s.scalars(select(SurveyParticipant.day))} == {"date"}


def test_answer_sets_are_not_stored_in_the_order_people_answered(d: Driver) -> None:
    """The token is the key and SQLite keeps the answer tables WITHOUT ROWID, in key order: the
    file's own row order says nothing of who answered first. (PostgreSQL's heap order is
    insertion order; see store/surveys.py on what that leaves to someone reading the files.)"""
    _answer_all(d)
    with d.session() as s:
        tokens = list(s.scalars(select(SurveyAnswerSet.token)))
        assert len(tokens) == len(RESPONDENTS)
        if s.get_bind().dialect.name == "sqlite":
            assert tokens == sorted(tokens)  # as stored: by random key
            with pytest.raises(OperationalError):
                s.execute(text("SELECT rowid FROM survey_answer_sets")).all()


def test_labels_are_coarse_and_closing_generalises_rare_combinations(d: Driver) -> None:
    _answer_all(d)
    with d.session() as s:
        labels = [(a.user_type, a.department, a.site) for a in s.scalars(select(SurveyAnswerSet))]
        assert all(kind in ("contributor", "animator", "referent", "silent", "") for kind, _, _ in labels)
    d.say("julien", "dm", "survey close 1")
    with d.session() as s:
        held = Counter((a.user_type, a.department, a.site) for a in s.scalars(select(SurveyAnswerSet)))
        # six answers: every stored combination is shared by at least 5 of them, or says nothing
        assert all(n >= 5 or combo == ("", "", "") for combo, n in held.items())
        departments = {p.department for p in s.scalars(select(Person).where(Person.handle.in_(RESPONDENTS)))}
        assert "Support" in departments  # Thomas, alone from Support among them
        assert not any(d_ == "Support" for _, d_, _ in held)


def test_a_named_survey_links_answers_through_its_own_table_only(d: Driver) -> None:
    create(d, anonymous="")
    d.job("surveys.send")
    d.say("james", "dm", "survey submit 1", form_values=answer_values(d))
    with d.session() as s:
        link = s.scalars(select(SurveyNamedAnswer)).one()
        james = s.scalar(select(Person.id).where(Person.handle == "james"))
        assert link.person_id == james
        assert s.scalar(select(SurveyAnswer.answer_set).limit(1)) == link.answer_set
