"""Pulse surveys (issue 18): anonymous by construction. Queries and the rules: store/surveys.py.

Who took part (`survey_participants`: survey, person, day, state) and what was answered
(`survey_answer_sets` + `survey_answers`: survey, random answer-set token, no person, no time)
share no column but the survey id. A named (non-anonymous) survey adds `survey_named_answers`
(answer set → person); an anonymous survey never has a row there.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped


class Survey(TenantScoped, Base):
    """One survey. `status`: open (sent, answers accepted) → closed; `anonymous` cannot change
    once created (a survey is sent when created). `audience_kind`: channel (value = the
    conversation id as text) | department | site | all. `recurrence`: "" | weekly | monthly
    (closing a recurring survey opens the next one, `parent_id` naming the previous).
    `reminders` (0–2): how many reminders before closing; `reminders_sent` counts those done."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_tenant_status", "tenant", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    audience_kind: Mapped[str] = mapped_column(String(20))
    audience_value: Mapped[str] = mapped_column(String(200), default="")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    closes_on: Mapped[date] = mapped_column(Date)
    reminders: Mapped[int] = mapped_column(Integer, default=1)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    recurrence: Mapped[str] = mapped_column(String(10), default="")
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    asked: Mapped[int | None] = mapped_column(Integer, nullable=True)  # participants written (None: count them)


class SurveyQuestion(TenantScoped, Base):
    """`kind`: scale5 (1–5) | enps (0–10) | single | multiple | text; `choices` for single and
    multiple (a list of labels)."""

    __tablename__ = "survey_questions"
    __table_args__ = (UniqueConstraint("survey_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(String(500))
    choices: Mapped[list[Any]] = mapped_column(JSON, default=list)


class SurveyParticipant(TenantScoped, Base):
    """Who is asked and how far they went — never what they answered. `state`: invited |
    answered | declined; `day`: the UTC day of the last change (the finest time kept).
    `invited`: the invitation DM went out (claimed by `claim`, a random token, so two
    processes never both send it); `reminded`: reminders sent to this person."""

    __tablename__ = "survey_participants"
    __table_args__ = (UniqueConstraint("survey_id", "person_id"),
                      Index("ix_survey_participants_survey_state", "survey_id", "state", "invited"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(10), default="invited")
    invited: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded: Mapped[int] = mapped_column(Integer, default=0)
    claim: Mapped[str | None] = mapped_column(String(40), nullable=True)


class SurveyAnswerSet(TenantScoped, Base):
    """One respondent's answers, under a random token (`secrets.token_hex(16)`: says nothing
    of order or time). The segment labels are coarse (see store/surveys.py `coarse_labels`):
    user_type (contributor | animator | referent | silent), department, site; "" = other."""

    __tablename__ = "survey_answer_sets"
    __table_args__ = (Index("ix_survey_answer_sets_survey", "survey_id"), {"sqlite_with_rowid": False})
    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    user_type: Mapped[str] = mapped_column(String(20), default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    site: Mapped[str] = mapped_column(String(200), default="")


class SurveyAnswer(TenantScoped, Base):
    """One answer: `value` for scale5/enps/single (the choice's index), `choices` for multiple
    (indexes), `text` for text. Keyed by (answer set, question): no sequence id. SQLite stores these three tables WITHOUT ROWID, in
    key order — the random token's — so not even the file's row order follows the answers'."""

    __tablename__ = "survey_answers"
    __table_args__ = (Index("ix_survey_answers_survey_question_set", "survey_id", "question_id", "answer_set"), {"sqlite_with_rowid": False})
    answer_set: Mapped[str] = mapped_column(ForeignKey("survey_answer_sets.token", ondelete="CASCADE"), primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id", ondelete="CASCADE"), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    value: Mapped[int | None] = mapped_column(Integer, nullable=True)
    choices: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)


class SurveyNamedAnswer(TenantScoped, Base):
    """Named surveys only: whose answer set this is (so a second answer replaces the first)."""

    __tablename__ = "survey_named_answers"
    __table_args__ = (UniqueConstraint("survey_id", "person_id"), {"sqlite_with_rowid": False})
    answer_set: Mapped[str] = mapped_column(ForeignKey("survey_answer_sets.token", ondelete="CASCADE"), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))


class SurveyTally(TenantScoped, Base):
    """The answers counted, for the results (store/survey_results.py reads these, not the
    answers): per survey, question, value and the answer sets' coarse labels, how many. Kept
    by the transaction that stores or replaces an answer (store/surveys.py `_tally`), rebuilt
    from the answers when closing generalises the labels (`rebuild_tallies`). Like the answer
    sets it names no person, no token and no time. Rows: `question_id` 0 counts answer sets
    (`value` 0); a scale, eNPS or single choice counts per stored value; a multiple choice per
    chosen index, and `value` -1 counts the sets that chose anything; a free text is counted
    at -1 alone, without labels (texts are never shown by segment)."""

    __tablename__ = "survey_tallies"
    __table_args__ = ({"sqlite_with_rowid": False},)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True)
    question_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_type: Mapped[str] = mapped_column(String(20), primary_key=True, default="")
    department: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    site: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
