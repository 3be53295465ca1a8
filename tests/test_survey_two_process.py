"""Two real worker processes on one PostgreSQL database send each survey invitation and each
reminder once."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.context import Services
from store import surveys
from store.models.core import Person, Workspace
from store.models.surveys import SurveyParticipant

ROOT = Path(__file__).resolve().parent.parent
TENANT = "console:surveys"
PEOPLE = 60
START = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # Monday, 10:00 in Paris


def _run_workers(db_url: str, when: datetime) -> list[dict[str, str]]:
    start_at = time.time() + 4.0
    workers = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "survey_worker.py"), db_url, when.isoformat(), "3",
                                 str(start_at)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        outputs.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    spans = [next(line for line in lines if "started" in line) for lines in outputs]
    assert max(s["started"] for s in spans) < min(s["ended"] for s in spans), "the workers did not run at the same time"
    return [line for lines in outputs for line in lines if "to" in line]


@pytest.mark.postgresql_only
def test_two_workers_send_each_invitation_and_each_reminder_once(services: Services, db_url: str) -> None:
    db = services.db
    with db.session(TENANT) as s:
        s.add(Workspace(id=TENANT, platform="console", default_locale="en", name="surveys"))
        people = [Person(external_id=f"p{i}", handle=f"p{i}", display_name=f"Person {i}", tz="Europe/Paris",
                         locale="fr" if i % 2 else "en") for i in range(PEOPLE)]
        s.add_all(people)
        s.flush()
        survey = surveys.create(s, author_id=people[0].id, title="Pulse", questions=[surveys.QuestionDraft("scale5", "Happy?")],
                                audience_kind="all", audience_value="", anonymous=True, closes_on=date(2026, 11, 27),
                                today=START.date(), reminders=1)
        survey_id = survey.id
    sent = _run_workers(db_url, START)
    invited = Counter(line["to"] for line in sent if line["key"] == "surveys.invite")
    assert len(invited) == PEOPLE and set(invited.values()) == {1}
    with db.session(TENANT) as s:  # a third answer; the rest is reminded the day before closing
        answered = list(s.scalars(select(SurveyParticipant.id).where(SurveyParticipant.survey_id == survey_id)
                                  .order_by(SurveyParticipant.id).limit(PEOPLE // 3)))
        s.execute(update(SurveyParticipant).where(SurveyParticipant.id.in_(answered)).values(state="answered"))
        answered_handles = set(s.scalars(select(Person.handle).join(SurveyParticipant, SurveyParticipant.person_id == Person.id)
                                         .where(SurveyParticipant.id.in_(answered))))
    sent = _run_workers(db_url, START + timedelta(days=3))
    reminded = Counter(line["to"] for line in sent if line["key"] == "surveys.reminder")
    assert not [line for line in sent if line["key"] == "surveys.invite"]
    assert set(reminded) == {f"p{i}" for i in range(PEOPLE)} - answered_handles and set(reminded.values()) == {1}
