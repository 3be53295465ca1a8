"""When each periodic job last ran, shared by every process on the database (bot.core `Bot.tick`).

Not tenant-scoped: a job runs once for all workspaces."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, UTCDateTime


class JobRun(Base):
    """One row per job name. A process runs a job only after moving `last_started_at` forward
    itself (store/jobs.py `claim`), so two processes never run one job in the same period.
    `last_error` is the failure of the last finished run, None when it succeeded."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
