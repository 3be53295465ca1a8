"""Pulse survey benchmark (issue 18): a survey to everyone (BENCH_PEOPLE, default 100,000) with
30 % of them answering (30,000), on SQLite (or any database: `prepare(url, n)` and `measure(url,
survey_id)` take a URL; figures before and after the tallies, SQLite and PostgreSQL, wall and
CPU: docs/surveys.md).

- `survey_fanout_s`: the database work of scheduling the sends: `store.surveys.create` to
  everyone (audience count, one INSERT … SELECT of the participants, invitations pending for
  the `surveys.send` job). The sends' own bookkeeping is timed apart: `survey_claims_per_run_s`
  is one `surveys.send` run's claims (`store.surveys.claim_invitations`, one conditional
  UPDATE … RETURNING per 900 of its PER_RUN DMs), and `survey_claims_all_s` that figure times the runs everyone needs
  (computed, not timed). The platform pacing is computed too: `survey_pacing_min` = people /
  PER_RUN (one run a minute).
- The database: SQLite in a temporary file, or `BENCH_SURVEYS_URL` (an empty database).
- Answers are generated with Core bulk inserts into the real tables, then tallied as closing
  does (`store.surveys.rebuild_tallies`), since they did not go through `record_answer` (answer sets with labels
  drawn from the organisation's departments and sites and the four kinds of member; answers to
  a 1–5 scale, a 0–10 eNPS question with 5 % skipped, a single choice, a multiple choice and a
  free-text question answered by one in five).
- `survey_results_p99_ms`: `store.survey_results.results` with every breakdown (kind of member,
  department, site) for an admin, 50 reads after one warm-up, in a fresh child process that
  only reads (so `survey_rss_mb` is a serving process's peak, not the generator's); charts are
  not in it (bot.charts' ~110 ms of CPU each, timed by the analytics bench).
"""
from __future__ import annotations

import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

TENANT = "bench"
ANSWER_SHARE = 0.3
READS = 50
TODAY = date(2026, 11, 23)


def prepare(url: str, n_people: int) -> dict[str, Any]:
    from bench.org import build_org
    from handlers.surveys.jobs import PER_RUN
    from store import surveys
    from store.db import Database
    from store.models.core import Person
    from store.models.surveys import SurveyAnswer, SurveyAnswerSet, SurveyParticipant
    from store.surveys import QuestionDraft

    db = Database(url)
    db.upgrade()
    started = time.perf_counter()
    build_org(db, TENANT, n_people, n_skills=2000)
    print(f"# organisation of {n_people} people in {time.perf_counter() - started:.1f} s", flush=True)
    with db.session(TENANT) as s:
        author = s.scalar(select(Person.id).order_by(Person.id).limit(1))

    started = time.perf_counter()
    with db.session(TENANT) as s:
        survey = surveys.create(s, author_id=author, title="Pulse", questions=[
            QuestionDraft("scale5", "Satisfied with Causette?"),
            QuestionDraft("enps", "Would you recommend it?"),
            QuestionDraft("single", "Where do you use it most?", ("Slack", "Teams", "Email")),
            QuestionDraft("multiple", "Which functions do you use?", ("Ask", "Ideas", "Kudos", "Digests", "Stats")),
            QuestionDraft("text", "A suggestion?")], audience_kind="all", audience_value="", anonymous=True,
            closes_on=TODAY + timedelta(days=14), today=TODAY)
        survey_id, questions = survey.id, [q.id for q in surveys.questions(s, survey.id)]
    created = time.perf_counter() - started
    started = time.perf_counter()
    with db.session(TENANT) as s:  # as one `surveys.send` run claims them: in batches
        pending = surveys.pending_invitations(s, survey_id, PER_RUN)
        claimed = len(surveys.claim_invitations(s, [p.id for p in pending]))
    claims = time.perf_counter() - started
    print(f"# survey created for everyone in {created:.2f} s; {claimed} invitations claimed in {claims:.2f} s", flush=True)

    rng = random.Random(18)
    with db.engine.begin() as conn:
        labels = list(conn.execute(select(Person.department, Person.site).where(Person.tenant == TENANT, Person.active)))
        asked = conn.execute(select(SurveyParticipant.person_id).where(SurveyParticipant.survey_id == survey_id)).all()
        n_answers = int(len(asked) * ANSWER_SHARE)
        sets, answers = [], []
        for _ in range(n_answers):
            token = secrets.token_hex(16)
            department, site = rng.choice(labels)
            kind = rng.choices(("contributor", "animator", "referent", "silent"), (30, 5, 2, 63))[0]
            sets.append({"tenant": TENANT, "token": token, "survey_id": survey_id, "user_type": kind,
                         "department": department, "site": site})
            row = {"tenant": TENANT, "answer_set": token, "survey_id": survey_id, "value": None, "choices": None, "text": None}
            answers.append({**row, "question_id": questions[0], "value": rng.choices(range(1, 6), (5, 10, 25, 40, 20))[0]})
            if rng.random() > 0.05:
                answers.append({**row, "question_id": questions[1], "value": rng.choices(range(11), (2, 1, 1, 2, 3, 5, 8, 15, 25, 20, 18))[0]})
            answers.append({**row, "question_id": questions[2], "value": rng.randrange(3)})
            answers.append({**row, "question_id": questions[3], "choices": sorted(rng.sample(range(5), rng.randint(1, 3)))})
            if rng.random() < 0.2:
                answers.append({**row, "question_id": questions[4], "text": f"Suggestion {rng.randrange(10**6)}"})
        for start in range(0, len(sets), 10000):
            conn.execute(insert(SurveyAnswerSet.__table__), sets[start:start + 10000])
        for start in range(0, len(answers), 10000):
            conn.execute(insert(SurveyAnswer.__table__), answers[start:start + 10000])
    started = time.perf_counter()
    with db.session(TENANT) as s:  # written in bulk, not through record_answer: counted as closing would
        surveys.rebuild_tallies(s, survey_id)
    print(f"# tallies of {n_answers} answers rebuilt in {time.perf_counter() - started:.2f} s", flush=True)
    with db.engine.connect() as conn:  # the statistics autovacuum would have gathered after such a load (PostgreSQL
        conn.exec_driver_sql("ANALYZE")  # plans a nested loop on rows=1 estimates otherwise: 2.9 s instead of 0.5 s)
        conn.commit()
    db.dispose()
    return {"survey_id": survey_id, "created_s": created, "claims_s": claims, "claimed": claimed, "per_run": PER_RUN,
            "asked": len(asked), "answers": n_answers}


def measure(url: str, survey_id: int) -> dict[str, Any]:
    from store import survey_results
    from store.analytics import Viewer
    from store.db import Database

    db = Database(url)
    timings, cpu = [], []
    for i in range(READS + 1):
        with db.session(TENANT, readonly=True) as s:
            started, cpu_started = time.perf_counter(), time.thread_time()
            found = survey_results.results(s, Viewer(1, admin=True), survey_id)
            elapsed, cpu_ms = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu_started) * 1000
        assert found is not None and found.enough
        if i:
            timings.append(elapsed)
            cpu.append(cpu_ms)
    timings.sort()
    cpu.sort()
    segments = sum(len(cells) for cells in found.segments.values())
    db.dispose()
    return {"p50": statistics.median(timings), "p99": timings[max(0, int(len(timings) * 0.99) - 1)],
            "cpu_p50": statistics.median(cpu), "cpu_p99": cpu[max(0, int(len(cpu) * 0.99) - 1)],
            "segments": segments, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(report: Any) -> None:
    n_people = report.people()
    with tempfile.TemporaryDirectory() as tmp:
        # BENCH_SURVEYS_URL: another (empty) database, e.g. postgresql://postgres@127.0.0.1:5432/bench_surveys
        url = os.environ.get("BENCH_SURVEYS_URL") or f"sqlite:///{Path(tmp) / 'surveys.db'}"
        prepared = prepare(url, n_people)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        out = subprocess.run([sys.executable, "-m", "bench.bench_surveys", url, str(prepared["survey_id"])],
                             capture_output=True, text=True, env=env, check=True)
        measured = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"# {prepared['asked']} asked, {prepared['answers']} answers, {measured['segments']} segments shown or hidden",
          flush=True)
    runs = -(-prepared["asked"] // prepared["per_run"])
    report.figure("survey_fanout_s", prepared["created_s"])
    report.figure("survey_claims_per_run_s", prepared["claims_s"])
    report.figure("survey_claims_all_s", prepared["claims_s"] * runs)
    report.figure("survey_pacing_min", prepared["asked"] / prepared["per_run"])
    report.figure("survey_results_p50_ms", measured["p50"])
    report.figure("survey_results_p99_ms", measured["p99"])
    report.figure("survey_results_cpu_p50_ms", measured["cpu_p50"])  # the shared machine runs several benches at once
    report.figure("survey_results_cpu_p99_ms", measured["cpu_p99"])
    report.figure("survey_rss_mb", measured["rss_mb"])


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
