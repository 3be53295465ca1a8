"""Database upkeep: keep the query planner's statistics fresh (see Database.analyze) and
forget old entries of the evidence log (store/evidence_log.py)."""
from __future__ import annotations

from datetime import datetime, timedelta

from bot.context import JobCtx
from bot.registry import Job, Registry
from bot.types import Effect
from store import evidence_log

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


def purge_evidence_log(jctx: JobCtx) -> list[Effect]:
    """Every worker may run it: deleting the same old rows twice is harmless."""
    evidence_log.purge(jctx.session)
    return []


def register(r: Registry) -> None:
    r.job(Job("store.analyze", EVERY, analyze))
    r.job(Job("store.evidence_log", timedelta(hours=1), purge_evidence_log))
