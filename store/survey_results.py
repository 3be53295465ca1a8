"""Pulse survey results (issue 18): the read side — who may read a survey's results, and the
figures, small groups already hidden. Tables and the write side: store/models/surveys.py,
store/surveys.py.

Who may read (`may_read`, `who_may_read`)
- The survey's author, admins (from the settings: `Viewer.admin`), and the référents of its
  audience: of the channel (a référent role on that conversation), of the department or site
  (`Role.scope_kind`/`scope_value`, case-insensitive), and workspace-wide référents (a role
  with no channel and no scope) for every audience. Anyone else gets None from `results` and
  `export_rows`: nothing, not even the number of answers.

What is shown (`results`)
- The number of people asked (participants), of answers (answer sets), the response rate.
- Under `min_group` answers (store.analytics.min_group, the analytics setting, default 5) no
  question figure at all: a distribution of 3 answers is 3 people's answers.
- Per question (scale5, enps, single, multiple): how many answered it (skipped answers are not
  stored, so not counted), the count per option, the average (scale5 1–5, enps 0–10), the eNPS
  (% promoters 9–10 minus % detractors 0–6, rounded). A question answered by fewer than
  `min_group` people shows none of that.
- Breakdowns by user type, department and site: the answer sets' labels (stored coarse at
  answer time, "" = other). Each is a partition of the answers, suppressed with
  `store.analytics.suppress_partition`: a segment of 1..min-1 answers is "fewer than N"
  (`size` None, `small` True), and complements are hidden so no subtraction gives a small
  segment back (`size` None, `small` False: shown "hidden"). Per question and segment, the
  average / eNPS is shown only where the segment's answers to that question, suppressed the
  same way within the question, are shown.
- Free-text answers: listed only when the survey has at least `min_group` answers, in a random
  order (a fresh shuffle per read: never the storage order), and never by segment (no function
  takes a segment).

Cost: the survey's tallies (`survey_tallies`, store/surveys.py `_tally`: counts per question,
value and labels, kept by the transactions that store answers) — a few hundred to a few thousand
rows whatever the number of answers — summed in Python, and the texts when shown. The people
asked are `Survey.asked`, written with the participants.
"""
from __future__ import annotations

import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from store.analytics import Viewer, min_group, suppress_partition
from store.models.core import Person, Role
from store.models.surveys import Survey, SurveyAnswer, SurveyParticipant, SurveyQuestion, SurveyTally

DIMENSIONS = ("user_type", "department", "site")
USER_TYPES = ("contributor", "animator", "referent", "silent")
CHART_KINDS = ("scale5", "enps", "single", "multiple")
MAX_TEXTS = 200
_SHUFFLE = random.SystemRandom()

__all__ = ["Segment", "QuestionResult", "Results", "may_read", "who_may_read", "results", "export_rows",
           "EXPORT_COLUMNS", "enps", "DIMENSIONS"]


@dataclass(frozen=True)
class Segment:
    """One cell of a breakdown. `size` None: hidden — `small` True when under the minimum
    ("fewer than N"), False when withheld as a complement ("hidden"). `scores`: question id →
    the segment's average (scale5) or eNPS (enps), None when hidden for that question."""

    dimension: str
    label: str
    size: int | None
    small: bool
    scores: dict[int, float | int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class QuestionResult:
    question_id: int
    position: int
    kind: str
    text: str
    options: tuple[str, ...]           # labels in the question's order ("1".."5", "0".."10", the choices)
    answered: int                      # answers to this question (skips not counted)
    shown: bool                        # answered >= min_group (and the survey too)
    counts: tuple[int, ...] = ()       # per option, when shown
    average: float | None = None       # scale5 / enps
    enps: int | None = None            # enps only
    texts: tuple[str, ...] | None = None  # free text, shuffled; None when hidden


@dataclass(frozen=True)
class Results:
    survey: Survey
    min_group: int
    asked: int
    answers: int
    rate: float | None
    enough: bool                       # answers >= min_group: figures shown at all
    questions: tuple[QuestionResult, ...]
    segments: dict[str, tuple[Segment, ...]]  # dimension → cells, largest first


# Who may read -------------------------------------------------------------------------------
def _referent_of(survey: Survey) -> Any:
    """The condition on `Role` naming a référent of the survey's audience (workspace-wide included)."""
    wide = and_(Role.conversation_id.is_(None), Role.scope_kind.is_(None))
    if survey.audience_kind == "channel" and str(survey.audience_value).isdigit():
        own = Role.conversation_id == int(survey.audience_value)
    elif survey.audience_kind in ("department", "site"):
        own = and_(Role.scope_kind == survey.audience_kind,
                   func.lower(func.trim(Role.scope_value)) == (survey.audience_value or "").strip().casefold())
    else:
        own = wide
    return and_(Role.role == "referent", or_(own, wide))


def may_read(session: Session, viewer: Viewer, survey: Survey) -> bool:
    if viewer.admin or (survey.author_id is not None and survey.author_id == viewer.person_id):
        return True
    return session.scalar(select(Role.id).where(Role.person_id == viewer.person_id, _referent_of(survey)).limit(1)) is not None


def who_may_read(session: Session, survey: Survey) -> list[Person]:
    """The author and the référents of the audience (admins come from the settings: the caller
    adds them), for a refusal that says who can."""
    ids = set(session.scalars(select(Role.person_id).where(_referent_of(survey))))
    if survey.author_id is not None:
        ids.add(survey.author_id)
    if not ids:
        return []
    people = session.scalars(select(Person).where(Person.id.in_(ids), Person.active.is_(True)))
    return sorted(people, key=lambda p: (p.id != survey.author_id, (p.display_name or p.handle).casefold()))


# Figures ------------------------------------------------------------------------------------
def enps(counts: Sequence[int]) -> int | None:
    """% promoters (9–10) minus % detractors (0–6) of the answers, `counts` indexed 0..10."""
    total = sum(counts)
    if not total:
        return None
    return round(100 * (sum(counts[9:11]) - sum(counts[0:7])) / total)


def _options(question: SurveyQuestion) -> tuple[str, ...]:
    if question.kind == "scale5":
        return tuple(str(v) for v in range(1, 6))
    if question.kind == "enps":
        return tuple(str(v) for v in range(0, 11))
    if question.kind in ("single", "multiple"):
        return tuple(str(c) for c in (question.choices or ()))
    return ()


def _score(kind: str, counts: Sequence[int]) -> float | int | None:
    total = sum(counts)
    if not total:
        return None
    if kind == "enps":
        return enps(counts)
    return sum((i + 1) * c for i, c in enumerate(counts)) / total


def _partition(sizes: dict[str, int], minimum: int) -> list[tuple[str, int | None, bool]]:
    labels = sorted(sizes, key=lambda g: (-sizes[g], g.casefold()))
    cells = suppress_partition([sizes[g] for g in labels], minimum)
    return [(g, c, c is None and sizes[g] < minimum) for g, c in zip(labels, cells)]


def _text_sample(session: Session, survey_id: int, question_id: int) -> list[str]:
    """MAX_TEXTS of a question's texts (all when fewer), in a fresh random order. The answer
    sets' tokens are random (secrets), so their order is a random permutation that says nothing
    of who or when: the texts from a random token on (wrapping round) are a random subset, read
    through the index without fetching the others, then shuffled."""
    start = secrets.token_hex(16)
    base = select(SurveyAnswer.text).where(SurveyAnswer.survey_id == survey_id, SurveyAnswer.question_id == question_id,
                                           SurveyAnswer.text.is_not(None), SurveyAnswer.text != "")
    found = [t for t in session.scalars(base.where(SurveyAnswer.answer_set >= start)
                                        .order_by(SurveyAnswer.answer_set).limit(MAX_TEXTS)) if t.strip()]
    if len(found) < MAX_TEXTS:
        found += [t for t in session.scalars(base.where(SurveyAnswer.answer_set < start)
                                             .order_by(SurveyAnswer.answer_set).limit(MAX_TEXTS - len(found))) if t.strip()]
    found = [t.strip() for t in found]
    _SHUFFLE.shuffle(found)
    return found


def results(session: Session, viewer: Viewer, survey_id: int) -> Results | None:
    """The survey's results as `viewer` may see them; None when the survey does not exist or
    the viewer may not read it."""
    survey = session.get(Survey, survey_id)
    if survey is None or not may_read(session, viewer, survey):
        return None
    minimum = min_group(session)
    asked = survey.asked if survey.asked is not None else session.scalar(
        select(func.count()).select_from(SurveyParticipant).where(SurveyParticipant.survey_id == survey.id)) or 0
    # Everything counted comes from the tallies (store/surveys.py `_tally`): a few hundred rows
    # per survey, kept by the transactions that store the answers, whatever the audience.
    tallies = [row for row in session.execute(
        select(SurveyTally.question_id, SurveyTally.value, SurveyTally.user_type, SurveyTally.department,
               SurveyTally.site, SurveyTally.count).where(SurveyTally.survey_id == survey.id)) if row[5] > 0]
    sets = [(kind, department, site, n) for qid, _v, kind, department, site, n in tallies if qid == 0]
    answers = sum(n for *_, n in sets)
    rate = min(answers / asked, 1.0) if asked else None
    enough = answers >= minimum
    questions = list(session.scalars(select(SurveyQuestion).where(SurveyQuestion.survey_id == survey.id)
                                     .order_by(SurveyQuestion.position)))
    if not enough:
        return Results(survey, minimum, asked, answers, rate, False,
                       tuple(QuestionResult(q.id, q.position, q.kind, q.text, _options(q), 0, False) for q in questions), {})

    # counts per question and option, per question and segment (scales and eNPS)
    per_q: dict[int, list[int]] = {q.id: [0] * len(_options(q)) for q in questions}
    per_seg: dict[tuple[int, str, str], list[int]] = {}
    answered: dict[int, int] = defaultdict(int)
    shape = {q.id: (q.kind, 1 if q.kind == "scale5" else 0, len(per_q[q.id])) for q in questions}  # kind, offset, options
    for qid, value, kind, department, site, n in tallies:
        if qid not in shape:
            continue
        qkind, offset, size = shape[qid]
        if qkind == "text":  # -1: wrote something
            if value == -1:
                answered[qid] += n
            continue
        if qkind == "multiple":  # -1: answered it; else a chosen index
            if value == -1:
                answered[qid] += n
            elif 0 <= value < size:
                per_q[qid][value] += n
            continue
        index = value - offset
        if not 0 <= index < size:
            continue
        per_q[qid][index] += n
        answered[qid] += n
        if qkind in ("scale5", "enps"):
            for dimension, label in (("user_type", kind), ("department", department), ("site", site)):
                key = (qid, dimension, label or "")
                cell = per_seg.get(key)
                if cell is None:
                    cell = per_seg[key] = [0] * size
                cell[index] += n
    texts: dict[int, list[str]] = {}
    for q in questions:
        if q.kind == "text" and answered.get(q.id):
            texts[q.id] = _text_sample(session, survey.id, q.id)

    out: list[QuestionResult] = []
    for q in questions:
        if q.kind == "text":
            out.append(QuestionResult(q.id, q.position, q.kind, q.text, (), answered.get(q.id, 0), True,
                                      texts=tuple(texts.get(q.id, ()))))
            continue
        n = answered.get(q.id, 0)
        counts = per_q[q.id]
        if n < minimum:
            out.append(QuestionResult(q.id, q.position, q.kind, q.text, _options(q), n, False))
            continue
        average = _score("scale5", counts) if q.kind == "scale5" else (
            sum(i * c for i, c in enumerate(counts)) / n if q.kind == "enps" else None)
        out.append(QuestionResult(q.id, q.position, q.kind, q.text, _options(q), n, True, tuple(counts),
                                  average, enps(counts) if q.kind == "enps" else None))

    segments: dict[str, tuple[Segment, ...]] = {}
    shown_scored = [r for r in out if r.kind in ("scale5", "enps") and r.shown]
    for position, dimension in enumerate(DIMENSIONS):
        sizes: dict[str, int] = defaultdict(int)
        for row in sets:
            sizes[row[position] or ""] += row[3]
        cells = _partition(sizes, minimum)
        scores: dict[str, dict[int, float | int | None]] = {label: {} for label, *_ in cells}
        for r in shown_scored:
            per_label = {label: per_seg.get((r.question_id, dimension, label), []) for label, *_ in cells}
            shown = dict(zip([label for label, *_ in cells],
                             suppress_partition([sum(per_label[label]) for label, *_ in cells], minimum)))
            for label, size, _small in cells:
                ok = size is not None and shown[label] is not None and sum(per_label[label]) > 0
                scores[label][r.question_id] = _score(r.kind, per_label[label]) if ok else None
        segments[dimension] = tuple(Segment(dimension, label, size, small, scores[label]) for label, size, small in cells)
    return Results(survey, minimum, asked, answers, rate, True, tuple(out), segments)


# Export -------------------------------------------------------------------------------------
EXPORT_COLUMNS = ("survey", "question", "kind", "breakdown", "segment", "answers", "option", "count", "average", "enps")


def export_rows(session: Session, viewer: Viewer, survey_id: int) -> list[dict[str, object]] | None:
    """Aggregated rows only (never an answer set, never a free text): one row per question and
    option, one per question and segment, the survey's totals. None when not readable."""
    found = results(session, viewer, survey_id)
    if found is None:
        return None
    hidden = f"<{found.min_group}"
    title = found.survey.title
    rows: list[dict[str, object]] = [{"survey": title, "question": "", "kind": "", "breakdown": "", "segment": "",
                                      "answers": found.answers, "option": "", "count": found.asked,
                                      "average": "", "enps": ""}]
    if not found.enough:
        return rows
    for q in found.questions:
        if q.kind == "text":
            continue
        base = {"survey": title, "question": q.text, "kind": q.kind, "breakdown": "", "segment": "",
                "answers": q.answered if q.shown else hidden}
        if not q.shown:
            rows.append({**base, "option": "", "count": "", "average": "", "enps": ""})
            continue
        rows.append({**base, "option": "", "count": "", "enps": "" if q.enps is None else q.enps,
                     "average": "" if q.average is None else round(q.average, 2)})
        for option, count in zip(q.options, q.counts):
            rows.append({**base, "option": option, "count": count, "average": "", "enps": ""})
        if q.kind in ("scale5", "enps"):
            for dimension, cells in found.segments.items():
                for cell in cells:
                    score = cell.scores.get(q.question_id)
                    rows.append({**base, "breakdown": dimension, "segment": cell.label,
                                 "answers": cell.size if cell.size is not None else (hidden if cell.small else "withheld"),
                                 "option": "", "count": "",
                                 "average": "" if score is None or q.kind != "scale5" else round(float(score), 2),
                                 "enps": "" if score is None or q.kind != "enps" else score})
    return rows
