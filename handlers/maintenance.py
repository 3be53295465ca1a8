"""Database upkeep: keep the query planner's statistics fresh (see Database.analyze)."""
from __future__ import annotations

from datetime import datetime, timedelta

from bot.context import JobCtx
from bot.registry import Job, Registry
from bot.types import Effect

EVERY = timedelta(hours=6)
_LAST_RUN = "store.analyze.last_run"


def analyze(jctx: JobCtx) -> list[Effect]:
    """Jobs tick every few seconds; statistics need refreshing a few times a day. The throttle
    is per process on purpose: a second worker analysing too is harmless."""
    last: datetime | None = jctx.services.extras.get(_LAST_RUN)
    if last is not None and jctx.now - last < EVERY:
        return []
    jctx.services.extras[_LAST_RUN] = jctx.now
    jctx.services.db.analyze()
    return []


def register(r: Registry) -> None:
    r.job(Job("store.analyze", EVERY, analyze))
