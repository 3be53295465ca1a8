"""The results read the tallies (store/surveys.py `_tally`), kept by the transactions that store
answers: they must always equal the answers counted again from scratch (`rebuild_tallies`) —
after anonymous answers with multiple choices and skipped questions, a named survey's answer
replaced, and closing's generalisation of the labels — and they carry no person, token or time."""
from __future__ import annotations

from sqlalchemy import inspect, select

from bot.core import Bot
from store import surveys
from store.models.surveys import SurveyTally
from tests.test_ideas_support import Driver
from tests.test_surveys import answer_values, create

PEOPLE = ("sophie", "chloe", "nathan", "sarah", "james", "charlotte", "mathis")


def tallies(d: Driver, survey_id: int) -> dict[tuple, int]:
    with d.session() as s:
        rows = s.execute(select(SurveyTally.question_id, SurveyTally.value, SurveyTally.user_type, SurveyTally.department,
                                SurveyTally.site, SurveyTally.count).where(SurveyTally.survey_id == survey_id)).all()
    return {tuple(r[:5]): r[5] for r in rows if r[5]}


def rebuilt(d: Driver, survey_id: int) -> dict[tuple, int]:
    with d.session() as s:
        surveys.rebuild_tallies(s, survey_id)
    return tallies(d, survey_id)


def test_tallies_kept_by_answers_equal_the_answers_counted_again(bot: Bot) -> None:
    d = Driver(bot)
    create(d)
    d.job("surveys.send")
    for i, who in enumerate(PEOPLE):
        extra = {} if i % 3 else {"q2": ""}  # some skip the eNPS question
        d.say(who, "dm", "survey submit 1", form_values=answer_values(d, scale=str(1 + i % 5), **extra))
    kept = tallies(d, 1)
    assert sum(n for k, n in kept.items() if k[0] == 0) == len(PEOPLE)
    with d.session() as s:
        kinds = {q.id: q.kind for q in surveys.questions(s, 1)}
    multiple = [k for k in kept if k[1] == -1 and kinds[k[0]] == "multiple"]
    assert multiple and sum(kept[k] for k in multiple) == len(PEOPLE)  # every one chose something
    written = [k for k in kept if kinds.get(k[0]) == "text"]  # texts: counted once, never by segment
    assert written == [(next(q for q, k in kinds.items() if k == "text"), -1, "", "", "")] and kept[written[0]] == len(PEOPLE)
    assert kept == rebuilt(d, 1)
    with d.session() as s:  # closing generalises the labels: the tallies follow
        surveys.close(s, surveys.get(s, 1), d.clock.now().date())
    assert tallies(d, 1) == rebuilt(d, 1)


def test_a_replaced_named_answer_is_taken_out_of_the_tallies(bot: Bot) -> None:
    d = Driver(bot)
    create(d, anonymous="no")
    d.job("surveys.send")
    for who in PEOPLE[:5]:
        d.say(who, "dm", "survey submit 1", form_values=answer_values(d, scale="2"))
    before = tallies(d, 1)
    d.say("sophie", "dm", "survey submit 1", form_values=answer_values(d, scale="5"))
    after = tallies(d, 1)
    assert after == rebuilt(d, 1)
    assert sum(n for k, n in after.items() if k[0] == 0) == 5
    scale = min(k[0] for k in after if k[0] > 0)
    assert sum(n for k, n in after.items() if k[0] == scale and k[1] == 5) == 1
    assert sum(n for k, n in after.items() if k[0] == scale and k[1] == 2) == 4
    assert before != after


def test_tallies_name_no_person_no_answer_set_no_time(bot: Bot) -> None:
    columns = {c["name"]: str(c["type"]).upper() for c in inspect(bot.services.db.engine).get_columns("survey_tallies")}
    assert set(columns) == {"tenant", "survey_id", "question_id", "value", "user_type", "department", "site", "count"}
    assert not [n for n, t in columns.items() if "DATE" in t or "TIME" in t]
