"""Pulse surveys (issue 18): the store's rules. Tables: store/models/surveys.py.

Anonymity by construction
- Who took part and what was answered live in tables that share nothing but the survey id:
  `survey_participants` (survey, person, UTC day, state invited | answered | declined) and
  `survey_answer_sets` / `survey_answers` (survey, answer-set token, question, value — no
  person, no time at all). The token is `secrets.token_hex(16)`: it reveals neither order nor
  time, and answers have no sequence id (their key is (answer set, question)). The
  participant's `day` moves when they answer, but answers carry no day to match it with.
- A named survey (`anonymous` False, fixed at creation, which is when it is sent) adds one
  `survey_named_answers` row (answer set → person); an anonymous survey never has one, so no
  query can join a person to an answer: there is no path.
- Segment labels for results (user type, department, site) are stored on the answer set,
  coarsened (`coarse_labels`): user type is one of four words (contributor, animator,
  referent, silent); a department or site is kept only when at least `min_group` people of
  the audience share the stored combination of labels, else it becomes "" (other) — so at
  answer time every stored combination matches at least `min_group` people who were asked.
  Closing (`close`) generalises again against the answers themselves: any combination held
  by fewer than `min_group` answer sets loses its site, then its department, then its user
  type, until each stored combination is held by at least `min_group` answer sets (or all
  labels are ""). After closing, someone reading the database, even knowing exactly who
  answered (participants), can narrow an answer set to no fewer than `min_group` people.
  While a survey is open, the labels of a rare combination are visible to a database reader
  only as the cell the results hide: the results (handlers/surveys/results.py) apply the
  same minimum to every group they show, with complementary suppression.
- Physical order: SQLite keeps the answer tables WITHOUT ROWID, so rows sit in the order of
  their random keys. PostgreSQL's heap keeps rows roughly in insertion order (`ctid`), as it
  keeps the participants' updated rows: someone reading the raw files or `ctid`s could line the
  two up. Closing rewrites every answer set's labels (new row versions, still in the old
  order); a VACUUM FULL / CLUSTER of `survey_answer_sets` on its key after closing removes the
  order — not done by the bot (an operator's task, noted in the privacy documentation to do).
- `min_group` is the analytics setting (store.analytics.min_group, default 5): an anonymous
  survey whose audience is smaller is refused (`SurveyError("surveys.error.audience_small")`).

API (every function takes a tenant-scoped session)
- `create(session, author_id, title, questions, audience_kind, audience_value, anonymous,
  closes_on, today, reminders=1, recurrence="")` → Survey; `questions` is a list of
  `QuestionDraft(kind, text, choices)`. Checks: 1–MAX_QUESTIONS questions, at most
  MAX_FORM_FIELDS answer fields (each choice of a multiple choice is one), closes_on after
  today, reminders 0–2, an anonymous survey's audience at least min_group. It writes the
  participants (state invited, `invited` False) with one INSERT … SELECT of the audience, and
  their number in `Survey.asked`: the invitation DMs are sent by the job.
- `audience(session, kind, value)` → person ids (active, non-bot): channel (value = the
  conversation id) | department | site (case-insensitive) | all.
- `invite(session, survey, person_ids, today)` → how many participants were added.
- `pending_invitations(session, survey_id, limit)` / `claim_invitation(session, participant_id)`:
  a conditional update; True for the one process that sends that DM. `claim_invitations` /
  `claim_reminders`: the same for many rows (one UPDATE … RETURNING per 900), what the job uses.
- Tallies (`survey_tallies`, read by the results): `record_answer` adds its answer set's counts
  (and takes a replaced one's away) in its transaction; `rebuild_tallies(session, survey_id)`
  counts them again from the answers (closing's generalisation, answers written in bulk).
- `reminder_due(session, survey, today)` / `claim_reminder(session, participant_id, number)`.
- `record_answer(session, survey, person_id, answers, today)` → (token, replaced): `answers`
  maps question id → int | list[int] | str; refuses closed surveys, people outside the
  participants, declined people, an anonymous second answer; a named survey replaces.
- `decline(session, survey, person_id, today)`.
- `close(session, survey, today)`: status closed, labels generalised (above).
- `not_answered(session, survey_id)` → person ids still `invited` (reminders).
- `questions(session, survey_id)`, `get(session, survey_id)`, `visible_to(session, person,
  is_admin)`, `delete(session, survey)`.
"""
from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import String, cast, delete as sql_delete, false, func, literal, select, update
from sqlalchemy.orm import Session

from store.analytics import counts_as_member, min_group
from store.models.analytics import PART_CONTRIBUTED, ActivityDay
from store.models.core import ConversationMember, Person, Role
from store.models.surveys import (Survey, SurveyAnswer, SurveyAnswerSet, SurveyNamedAnswer, SurveyParticipant,
                                  SurveyQuestion, SurveyTally)

MAX_QUESTIONS = 20
KINDS = ("scale5", "enps", "single", "multiple", "text")
AUDIENCE_KINDS = ("channel", "department", "site", "all")
RECURRENCES = ("", "weekly", "monthly")
MAX_CHOICES = 10
MAX_FORM_FIELDS = 50  # a multiple choice is one checkbox per choice; Slack's modal holds 100 blocks
CONTRIBUTOR_DAYS = 30
USER_TYPES = ("contributor", "animator", "referent", "silent")


class SurveyError(Exception):
    """A refusal with a prompt key and its parameters (the handler turns it into a UserError)."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class QuestionDraft:
    kind: str
    text: str
    choices: tuple[str, ...] = field(default=())


def _audience_query(tenant: str, kind: str, value: str) -> Any:
    """SELECT of the audience's person ids (active, non-bot), each once. The tenant is named
    here, not left to the session's guard: the guard scopes ORM reads, and this SELECT also
    feeds an INSERT (`_invite_all`), which it does not touch."""
    query = select(Person.id).where(Person.tenant == tenant, counts_as_member())
    if kind == "channel":
        query = query.join(ConversationMember, ConversationMember.person_id == Person.id).where(
            ConversationMember.tenant == tenant, ConversationMember.conversation_id == int(value)).distinct()
    elif kind in ("department", "site"):
        column = Person.department if kind == "department" else Person.site
        query = query.where(func.lower(column) == value.strip().lower())
    elif kind != "all":
        raise SurveyError("surveys.error.audience_kind")
    return query


def audience(session: Session, kind: str, value: str) -> list[int]:
    return sorted(set(session.scalars(_audience_query(session.info["tenant"], kind, value))))


def create(session: Session, *, author_id: int, title: str, questions: Sequence[QuestionDraft], audience_kind: str,
           audience_value: str, anonymous: bool, closes_on: date, today: date, reminders: int = 1,
           recurrence: str = "") -> Survey:
    if not title.strip():
        raise SurveyError("surveys.error.no_title")
    if not questions:
        raise SurveyError("surveys.error.no_question")
    if len(questions) > MAX_QUESTIONS:
        raise SurveyError("surveys.error.too_many", limit=MAX_QUESTIONS, count=len(questions))
    for number, draft in enumerate(questions, start=1):
        if draft.kind not in KINDS or not draft.text.strip():
            raise SurveyError("surveys.error.question", number=number)
        if draft.kind in ("single", "multiple") and not 2 <= len(draft.choices) <= MAX_CHOICES:
            raise SurveyError("surveys.error.choices", number=number, limit=MAX_CHOICES)
    fields = sum(len(d.choices) if d.kind == "multiple" else 1 for d in questions)
    if fields > MAX_FORM_FIELDS:
        raise SurveyError("surveys.error.too_long", count=fields, limit=MAX_FORM_FIELDS)
    if closes_on <= today:
        raise SurveyError("surveys.error.past", day=closes_on)
    if not 0 <= reminders <= 2:
        raise SurveyError("surveys.error.reminders")
    if recurrence not in RECURRENCES:
        raise SurveyError("surveys.error.recurrence")
    people = _audience_query(session.info["tenant"], audience_kind, audience_value)
    size = session.scalar(select(func.count()).select_from(people.subquery())) or 0
    if not size:
        raise SurveyError("surveys.error.audience_empty")
    minimum = min_group(session)
    if anonymous and size < minimum:
        raise SurveyError("surveys.error.audience_small", count=size, minimum=minimum)
    survey = Survey(author_id=author_id, title=title.strip()[:200], audience_kind=audience_kind,
                    audience_value=audience_value, anonymous=anonymous, closes_on=closes_on, reminders=reminders,
                    reminders_sent=0, recurrence=recurrence, status="open", created_on=today)
    session.add(survey)
    session.flush()
    for position, draft in enumerate(questions, start=1):
        session.add(SurveyQuestion(survey_id=survey.id, position=position, kind=draft.kind,
                                   text=draft.text.strip()[:500], choices=list(draft.choices)))
    _invite_all(session, survey, people, today)
    survey.asked = size
    return survey


def _invite_all(session: Session, survey: Survey, people: Any, today: date) -> None:
    """One participant row per person of the audience query, in one INSERT … SELECT: the
    database copies the ids (100,000 people: no row travels through Python)."""
    ids = people.subquery()
    table = SurveyParticipant.__table__
    rows = select(literal(survey.tenant), literal(survey.id), ids.c.id, literal(today), literal("invited"),
                  false(), literal(0)).where(ids.c.id.is_not(None)).order_by(ids.c.id)
    session.execute(table.insert().from_select(
        ["tenant", "survey_id", "person_id", "day", "state", "invited", "reminded"], rows))


def invite(session: Session, survey: Survey, person_ids: Iterable[int], today: date) -> int:
    known = set(session.scalars(select(SurveyParticipant.person_id).where(SurveyParticipant.survey_id == survey.id)))
    rows = [{"survey_id": survey.id, "person_id": pid, "day": today, "state": "invited", "invited": False,
             "reminded": 0, "claim": None, "tenant": survey.tenant} for pid in person_ids if pid not in known]
    if rows:
        session.execute(SurveyParticipant.__table__.insert(), rows)
        if survey.asked is not None:
            survey.asked += len(rows)
    return len(rows)


def get(session: Session, survey_id: int) -> Survey | None:
    return session.get(Survey, survey_id)


def questions(session: Session, survey_id: int) -> list[SurveyQuestion]:
    return list(session.scalars(select(SurveyQuestion).where(SurveyQuestion.survey_id == survey_id)
                                .order_by(SurveyQuestion.position)))


def participant(session: Session, survey_id: int, person_id: int) -> SurveyParticipant | None:
    return session.scalar(select(SurveyParticipant).where(SurveyParticipant.survey_id == survey_id,
                                                          SurveyParticipant.person_id == person_id))


def pending_invitations(session: Session, survey_id: int, limit: int = 500) -> list[SurveyParticipant]:
    return list(session.scalars(select(SurveyParticipant).where(
        SurveyParticipant.survey_id == survey_id, SurveyParticipant.invited.is_(False),
        SurveyParticipant.state == "invited").order_by(SurveyParticipant.id).limit(limit)))


def claim_invitation(session: Session, participant_id: int) -> bool:
    """True for the one caller that moves `invited` from False to True (then sends the DM in
    the same transaction's outbox)."""
    token = secrets.token_hex(8)
    moved = session.execute(update(SurveyParticipant).where(
        SurveyParticipant.id == participant_id, SurveyParticipant.invited.is_(False))
        .values(invited=True, claim=token).returning(SurveyParticipant.id)
        .execution_options(synchronize_session=False)).first()
    return moved is not None


def claim_invitations(session: Session, participant_ids: Sequence[int]) -> set[int]:
    """`claim_invitation` for many rows: one conditional UPDATE … RETURNING per chunk of 900
    ids; the ids this caller moved from not invited to invited (it sends those DMs)."""
    return _claimed(session, participant_ids, lambda chunk: update(SurveyParticipant).where(
        SurveyParticipant.id.in_(chunk), SurveyParticipant.invited.is_(False))
        .values(invited=True, claim=secrets.token_hex(8)))


def claim_reminders(session: Session, participant_ids: Sequence[int], number: int) -> set[int]:
    """`claim_reminder` for many rows, the same way."""
    return _claimed(session, participant_ids, lambda chunk: update(SurveyParticipant).where(
        SurveyParticipant.id.in_(chunk), SurveyParticipant.reminded < number, SurveyParticipant.state == "invited")
        .values(reminded=number))


def _claimed(session: Session, ids: Sequence[int], statement: Any) -> set[int]:
    moved: set[int] = set()
    ids = list(ids)
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        moved.update(session.scalars(statement(chunk).returning(SurveyParticipant.id)
                                     .execution_options(synchronize_session=False)))
    return moved


def reminder_days(survey: Survey) -> list[date]:
    """The days reminders are due: one → the day before closing; two → also halfway."""
    if survey.reminders <= 0:
        return []
    last = survey.closes_on - timedelta(days=1)
    days = [last]
    if survey.reminders >= 2:
        span = (survey.closes_on - survey.created_on).days
        days.insert(0, survey.created_on + timedelta(days=max(1, span // 2)))
    return [d for d in days if d > survey.created_on] or [last]


def reminder_number_due(survey: Survey, today: date) -> int:
    """How many reminders should have gone out by `today` (0 when none yet)."""
    return sum(1 for d in reminder_days(survey) if d <= today)


def reminder_targets(session: Session, survey: Survey, number: int, limit: int = 500) -> list[SurveyParticipant]:
    return list(session.scalars(select(SurveyParticipant).where(
        SurveyParticipant.survey_id == survey.id, SurveyParticipant.state == "invited",
        SurveyParticipant.invited.is_(True), SurveyParticipant.reminded < number)
        .order_by(SurveyParticipant.id).limit(limit)))


def claim_reminder(session: Session, participant_id: int, number: int) -> bool:
    moved = session.execute(update(SurveyParticipant).where(
        SurveyParticipant.id == participant_id, SurveyParticipant.reminded < number,
        SurveyParticipant.state == "invited")
        .values(reminded=number).returning(SurveyParticipant.id)
        .execution_options(synchronize_session=False)).first()
    return moved is not None


def not_answered(session: Session, survey_id: int) -> list[int]:
    return list(session.scalars(select(SurveyParticipant.person_id).where(
        SurveyParticipant.survey_id == survey_id, SurveyParticipant.state == "invited")
        .order_by(SurveyParticipant.person_id)))


def counts(session: Session, survey_id: int) -> dict[str, int]:
    """Participants per state (invited, answered, declined)."""
    rows = session.execute(select(SurveyParticipant.state, func.count()).where(
        SurveyParticipant.survey_id == survey_id).group_by(SurveyParticipant.state)).all()
    found = {state: n for state, n in rows}
    return {state: found.get(state, 0) for state in ("invited", "answered", "declined")}


def user_types(session: Session, person_ids: Sequence[int], today: date) -> dict[int, str]:
    """referent > animator (any role) > contributor (contributed in the last 30 days) > silent."""
    ids = list(person_ids)
    found: dict[int, str] = {pid: "silent" for pid in ids}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        since = today - timedelta(days=CONTRIBUTOR_DAYS)
        for pid in session.scalars(select(ActivityDay.person_id).where(
                ActivityDay.person_id.in_(chunk), ActivityDay.day >= since, _contributed()).distinct()):
            found[pid] = "contributor"
        for pid, role in session.execute(select(Role.person_id, Role.role).where(
                Role.person_id.in_(chunk), Role.role.in_(("animator", "referent")))).all():
            if role == "referent" or found[pid] != "referent":
                found[pid] = role
    return found


def _contributed() -> Any:
    """A roll-up row where the person contributed (analytics' own rule, not only reacted)."""
    return ActivityDay.part == PART_CONTRIBUTED


def user_type(session: Session, person_id: int, today: date) -> str:
    return user_types(session, [person_id], today)[person_id]


def _audience_of_type(session: Session, survey: Survey, kind: str, today: date) -> int:
    """How many of the survey's participants are of user type `kind` (aggregates only)."""
    members = select(SurveyParticipant.person_id).where(SurveyParticipant.survey_id == survey.id)
    role_of = lambda role: select(Role.person_id).where(Role.role == role, Role.person_id.in_(members))  # noqa: E731
    since = today - timedelta(days=CONTRIBUTOR_DAYS)
    contributors = select(ActivityDay.person_id).where(ActivityDay.person_id.in_(members),
                                                       ActivityDay.day >= since, _contributed())
    count = lambda q: session.scalar(select(func.count(func.distinct(q.subquery().c.person_id)))) or 0  # noqa: E731
    referents = count(role_of("referent"))
    if kind == "referent":
        return referents
    animators = count(select(Role.person_id).where(Role.role == "animator", Role.person_id.in_(members),
                                                   Role.person_id.not_in(role_of("referent"))))
    if kind == "animator":
        return animators
    contributing = count(contributors.where(ActivityDay.person_id.not_in(
        select(Role.person_id).where(Role.role.in_(("animator", "referent"))))))
    if kind == "contributor":
        return contributing
    total = session.scalar(select(func.count()).select_from(members.subquery())) or 0
    return total - referents - animators - contributing


def _generalise(labels: tuple[str, str, str], level: int) -> tuple[str, str, str]:
    """level 0: all three; 1: no site; 2: user type only; 3: nothing."""
    kind, department, site = labels
    return ((kind, department, site), (kind, department, ""), (kind, "", ""), ("", "", ""))[level]


def coarse_labels(session: Session, survey: Survey, person: Person, today: date) -> tuple[str, str, str]:
    """(user type, department, site) for `person`, generalised until at least min_group people
    of the survey's audience share the combination (department and site compared trimmed,
    case-insensitively)."""
    minimum = min_group(session)
    mine = (user_type(session, person.id, today), person.department.strip(), person.site.strip())
    base = select(Person.id).join(SurveyParticipant, SurveyParticipant.person_id == Person.id).where(
        SurveyParticipant.survey_id == survey.id)
    if mine[1]:
        same_department = base.where(func.lower(func.trim(Person.department)) == mine[1].lower())
        levels = [(0, same_department.where(func.lower(func.trim(Person.site)) == mine[2].lower())),
                  (1, same_department)] if mine[2] else [(1, same_department)]
        for level, query in levels:
            ids = list(session.scalars(query))
            if len(ids) >= minimum and sum(1 for k in user_types(session, ids, today).values() if k == mine[0]) >= minimum:
                return _generalise(mine, level)
    if _audience_of_type(session, survey, mine[0], today) >= minimum:
        return _generalise(mine, 2)
    return ("", "", "")


def record_answer(session: Session, survey: Survey, person: Person, answers: dict[int, Any],
                  today: date) -> tuple[str, bool]:
    """Store one respondent's answers. Returns (answer-set token, replaced an earlier one)."""
    if survey.status != "open" or today > survey.closes_on:
        raise SurveyError("surveys.error.closed", day=survey.closed_on or survey.closes_on)
    row = participant(session, survey.id, person.id)
    if row is None:
        raise SurveyError("surveys.error.not_asked")
    if row.state == "declined":
        raise SurveyError("surveys.error.declined")
    if row.state == "answered" and survey.anonymous:
        raise SurveyError("surveys.error.twice")
    clean = _validated(questions(session, survey.id), answers)
    replaced = False
    if not survey.anonymous:
        old = session.scalar(select(SurveyNamedAnswer.answer_set).where(
            SurveyNamedAnswer.survey_id == survey.id, SurveyNamedAnswer.person_id == person.id))
        if old is not None:
            _tally(session, survey.id, _answer_set_counts(session, old), -1)
            session.execute(sql_delete(SurveyAnswerSet).where(SurveyAnswerSet.token == old))
            session.execute(sql_delete(SurveyAnswer).where(SurveyAnswer.answer_set == old))
            session.execute(sql_delete(SurveyNamedAnswer).where(SurveyNamedAnswer.answer_set == old))
            replaced = True
    kind, department, site = coarse_labels(session, survey, person, today)
    token = secrets.token_hex(16)
    session.add(SurveyAnswerSet(token=token, survey_id=survey.id, user_type=kind, department=department, site=site))
    session.flush()
    for question_id, (value, choices, text) in clean.items():
        session.add(SurveyAnswer(answer_set=token, question_id=question_id, survey_id=survey.id,
                                 value=value, choices=choices, text=text))
    if not survey.anonymous:
        session.add(SurveyNamedAnswer(answer_set=token, survey_id=survey.id, person_id=person.id))
    kinds = {q.id: q.kind for q in questions(session, survey.id)}
    _tally(session, survey.id, _counts_of((kind, department, site),
                                          [(qid, kinds.get(qid, ""), v, c, bool(t)) for qid, (v, c, t) in clean.items()]), +1)
    row.state = "answered"
    row.day = today
    session.flush()
    return token, replaced


def _validated(qs: list[SurveyQuestion], answers: dict[int, Any]) -> dict[int, tuple[int | None, list[int] | None, str | None]]:
    """Each question's answer checked against its kind; an empty answer is skipped (not stored)."""
    out: dict[int, tuple[int | None, list[int] | None, str | None]] = {}
    for number, q in enumerate(qs, start=1):
        raw = answers.get(q.id)
        if raw is None or raw == "" or raw == []:
            continue
        if q.kind in ("scale5", "enps", "single"):
            low, high = {"scale5": (1, 5), "enps": (0, 10)}.get(q.kind, (0, len(q.choices) - 1))
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise SurveyError("surveys.error.range", number=number, low=low, high=high) from None
            if not low <= value <= high:
                raise SurveyError("surveys.error.range", number=number, low=low, high=high)
            out[q.id] = (value, None, None)
        elif q.kind == "multiple":
            items = raw if isinstance(raw, list) else [p for p in str(raw).replace(";", ",").split(",") if p.strip()]
            picked: list[int] = []
            for item in items:
                try:
                    index = int(str(item).strip())
                except ValueError:
                    raise SurveyError("surveys.error.range", number=number, low=0, high=len(q.choices) - 1) from None
                if not 0 <= index < len(q.choices):
                    raise SurveyError("surveys.error.range", number=number, low=0, high=len(q.choices) - 1)
                if index not in picked:
                    picked.append(index)
            out[q.id] = (None, sorted(picked), None)
        else:
            out[q.id] = (None, None, str(raw).strip()[:2000])
    if not out:
        raise SurveyError("surveys.error.empty_answer")
    return out


def decline(session: Session, survey: Survey, person_id: int, today: date) -> None:
    row = participant(session, survey.id, person_id)
    if row is None:
        raise SurveyError("surveys.error.not_asked")
    if row.state == "answered":
        raise SurveyError("surveys.error.already_answered")
    row.state = "declined"
    row.day = today


def close(session: Session, survey: Survey, today: date) -> bool:
    """Close (once: a conditional update, so two processes close it once) and generalise the
    answer sets' labels against the answers. True when this call closed it."""
    moved = session.execute(update(Survey).where(Survey.id == survey.id, Survey.status == "open")
                            .values(status="closed", closed_on=today).returning(Survey.id)
                            .execution_options(synchronize_session=False)).first()
    if moved is None:
        return False
    session.refresh(survey)
    generalise_answer_labels(session, survey.id)
    return True


def generalise_answer_labels(session: Session, survey_id: int) -> None:
    minimum = min_group(session)
    sets = session.execute(select(SurveyAnswerSet.token, SurveyAnswerSet.user_type, SurveyAnswerSet.department,
                                  SurveyAnswerSet.site).where(SurveyAnswerSet.survey_id == survey_id)).all()
    labels = {token: (k, d, s) for token, k, d, s in sets}
    for level in range(1, 4):
        held = Counter(_generalise(v, 0) for v in labels.values())
        rare = {combo for combo, n in held.items() if n < minimum and combo != ("", "", "")}
        if not rare:
            break
        labels = {t: (_generalise(v, level) if v in rare else v) for t, v in labels.items()}
    for token, (k, d, s) in labels.items():
        session.execute(update(SurveyAnswerSet).where(SurveyAnswerSet.token == token)
                        .values(user_type=k, department=d, site=s).execution_options(synchronize_session=False))
    rebuild_tallies(session, survey_id)


# Tallies: the answers counted for the results ----------------------------------------------
Labels = tuple[str, str, str]
TallyKey = tuple[int, int, str, str, str]  # question (0: answer sets), value, user type, department, site


def _counts_of(labels: Labels, answers: Iterable[tuple[int, str, int | None, list[int] | None, bool]]) -> Counter[TallyKey]:
    """What one answer set adds to the tallies: itself (question 0), each scale, eNPS or
    single answer by value, each multiple choice by chosen index plus -1 for answering it, and
    a free text by -1 alone, without labels (texts are never counted by segment)."""
    labels = (labels[0] or "", labels[1] or "", labels[2] or "")
    out: Counter[TallyKey] = Counter({(0, 0, *labels): 1})
    for qid, kind, value, choices, wrote in answers:
        if kind == "text" and wrote:
            out[(qid, -1, "", "", "")] += 1
        if kind in ("scale5", "enps", "single") and value is not None:
            out[(qid, value, *labels)] += 1
        elif kind == "multiple" and choices:
            out[(qid, -1, *labels)] += 1
            for index in set(choices):
                out[(qid, int(index), *labels)] += 1
    return out


def _answer_set_counts(session: Session, token: str) -> Counter[TallyKey]:
    labels = session.execute(select(SurveyAnswerSet.user_type, SurveyAnswerSet.department, SurveyAnswerSet.site)
                             .where(SurveyAnswerSet.token == token)).one()
    rows = session.execute(select(SurveyAnswer.question_id, SurveyQuestion.kind, SurveyAnswer.value, SurveyAnswer.choices,
                                  SurveyAnswer.text)
                           .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
                           .where(SurveyAnswer.answer_set == token)).all()
    return _counts_of(tuple(labels), [(q, k, v, c, bool(t)) for q, k, v, c, t in rows])  # type: ignore[arg-type]


def _tally(session: Session, survey_id: int, counts: Counter[TallyKey], sign: int) -> None:
    """Add (`sign` 1) or take away (-1) `counts`: one upsert per row, in key order (two
    answers in flight lock the rows they share in the same order: no deadlock)."""
    if not counts:
        return
    table = SurveyTally.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(index_elements=[c.name for c in table.primary_key.columns],
                                                set_={"count": table.c.count + statement.excluded.count})
    tenant = session.info["tenant"]
    session.execute(statement, [{"tenant": tenant, "survey_id": survey_id, "question_id": q, "value": v, "user_type": k,
                                 "department": d, "site": si, "count": sign * n}
                                for (q, v, k, d, si), n in sorted(counts.items())])


def rebuild_tallies(session: Session, survey_id: int) -> None:
    """The survey's tallies counted again from its answers (after closing rewrote the labels,
    or after answers were written in bulk): grouped in the database, no answer set leaves it."""
    session.execute(sql_delete(SurveyTally).where(SurveyTally.survey_id == survey_id))
    kinds = {q.id: q.kind for q in questions(session, survey_id)}
    labels = (SurveyAnswerSet.user_type, SurveyAnswerSet.department, SurveyAnswerSet.site)
    counts: Counter[TallyKey] = Counter()
    for kind, department, site, n in session.execute(select(*labels, func.count()).where(
            SurveyAnswerSet.survey_id == survey_id).group_by(*labels)):
        counts[(0, 0, kind or "", department or "", site or "")] += n
    valued = [q for q, k in kinds.items() if k in ("scale5", "enps", "single")]
    if valued:
        for qid, value, kind, department, site, n in session.execute(
                select(SurveyAnswer.question_id, SurveyAnswer.value, *labels, func.count())
                .select_from(SurveyAnswerSet).join(SurveyAnswer, SurveyAnswer.answer_set == SurveyAnswerSet.token)
                .where(SurveyAnswerSet.survey_id == survey_id, SurveyAnswer.question_id.in_(valued),
                       SurveyAnswer.value.is_not(None))
                .group_by(SurveyAnswer.question_id, SurveyAnswer.value, *labels)):
            counts[(qid, value, kind or "", department or "", site or "")] += n
    multiple = [q for q, k in kinds.items() if k == "multiple"]
    if multiple:
        stored = cast(SurveyAnswer.choices, String)  # a few distinct sets of choices, counted by the database
        for qid, text, kind, department, site, n in session.execute(
                select(SurveyAnswer.question_id, stored, *labels, func.count())
                .select_from(SurveyAnswerSet).join(SurveyAnswer, SurveyAnswer.answer_set == SurveyAnswerSet.token)
                .where(SurveyAnswerSet.survey_id == survey_id, SurveyAnswer.question_id.in_(multiple),
                       SurveyAnswer.choices.is_not(None))
                .group_by(SurveyAnswer.question_id, stored, *labels)):
            for key, m in _counts_of((kind, department, site), [(qid, "multiple", None, json.loads(text) if text else None, False)]).items():
                if key[0]:
                    counts[key] += m * n
    texts = [q for q, k in kinds.items() if k == "text"]
    if texts:
        for qid, n in session.execute(select(SurveyAnswer.question_id, func.count()).where(
                SurveyAnswer.survey_id == survey_id, SurveyAnswer.question_id.in_(texts), SurveyAnswer.text.is_not(None),
                SurveyAnswer.text != "").group_by(SurveyAnswer.question_id)):
            counts[(qid, -1, "", "", "")] += n
    _tally(session, survey_id, counts, +1)


def open_surveys(session: Session) -> list[Survey]:
    return list(session.scalars(select(Survey).where(Survey.status == "open").order_by(Survey.id)))


def visible_to(session: Session, person: Person, is_admin: bool) -> list[Survey]:
    """Admins see every survey; others the ones they wrote."""
    query = select(Survey).order_by(Survey.id.desc())
    if not is_admin:
        query = query.where(Survey.author_id == person.id)
    return list(session.scalars(query))


def delete(session: Session, survey: Survey) -> None:
    for model in (SurveyTally, SurveyAnswer, SurveyNamedAnswer, SurveyAnswerSet, SurveyParticipant, SurveyQuestion):
        session.execute(sql_delete(model).where(model.survey_id == survey.id))
    session.delete(survey)
    session.flush()
