"""Periodic jobs' turns, claimed in the database (table `job_runs`, store/models/jobs.py).

Every process ticks on its own; a job runs in the one that moves its `last_started_at`
forward first. The move is one conditional statement (INSERT … ON CONFLICT DO NOTHING for a
job's first run, UPDATE … WHERE last_started_at <= now - every afterwards), so on SQLite
(one writer at a time) and PostgreSQL (the row lock, then the condition checked again) two
processes ticking at the same moment never both get the same period.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from store.idempotency import insert_ignore
from store.models.jobs import JobRun

ERROR_CHARS = 500


def _elapsed(last_started_at: datetime | None, every: timedelta, now: datetime) -> bool:
    """Due when it never ran, when its period has passed, or when its last start lies more
    than a period ahead (a clock moved back, e.g. a console restarted after `/clock +1w`):
    waiting for the clock to catch up would stop the job for that long."""
    if last_started_at is None:
        return True
    return last_started_at <= now - every or last_started_at > now + every


def due(session: Session, periods: Mapping[str, timedelta], now: datetime) -> list[str]:
    """The names in `periods` (name → period) whose period has elapsed at `now`: a pure read, so
    a tick with nothing due writes nothing. Only a hint: `claim` decides."""
    started = dict(session.execute(select(JobRun.name, JobRun.last_started_at)
                                   .where(JobRun.name.in_(list(periods)))).all())
    return [name for name, every in periods.items() if _elapsed(started.get(name), every, now)]


def claim(session: Session, name: str, every: timedelta, now: datetime) -> bool:
    """True when this caller gets the job's turn at `now` (commit before running the job so the
    others see it); False when another process has it for this period."""
    if insert_ignore(session, JobRun, {"name": name, "last_started_at": now,
                                       "last_finished_at": None, "last_error": None}):
        return True
    moved = session.execute(
        update(JobRun)
        .where(JobRun.name == name,
               or_(JobRun.last_started_at <= now - every, JobRun.last_started_at > now + every))
        .values(last_started_at=now)
        .returning(JobRun.name)  # not rowcount: psycopg 3 may report -1 (see store/idempotency.py)
        .execution_options(synchronize_session=False)
    ).first()
    return moved is not None


def finish(session: Session, name: str, started_at: datetime, finished_at: datetime, error: str | None) -> None:
    """Record how the run started at `started_at` ended (`error` None when it succeeded). A run
    that outlived its period and was claimed again by then leaves the newer run's row alone."""
    session.execute(
        update(JobRun)
        .where(JobRun.name == name, JobRun.last_started_at == started_at)
        .values(last_finished_at=finished_at, last_error=error[:ERROR_CHARS] if error else None)
        .execution_options(synchronize_session=False)
    )


def runs(session: Session) -> dict[str, JobRun]:
    """Every job's row, by name (tests, operators)."""
    return {row.name: row for row in session.scalars(select(JobRun))}
