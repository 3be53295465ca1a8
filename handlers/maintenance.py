"""Database upkeep: keep the query planner's statistics fresh (see Database.analyze) and
forget old entries of the evidence log (store/evidence_log.py). `Bot.tick` honours each job's
period across processes, so each runs once per period wherever it runs."""
from __future__ import annotations

from datetime import timedelta

from bot.context import JobCtx
from bot.registry import Job, Registry
from bot.types import Effect
from store import evidence_log


def analyze(jctx: JobCtx) -> list[Effect]:
    """Statistics need refreshing a few times a day, not at every tick."""
    jctx.services.db.analyze()
    return []


def purge_evidence_log(jctx: JobCtx) -> list[Effect]:
    evidence_log.purge(jctx.session)
    return []


def register(r: Registry) -> None:
    r.job(Job("store.analyze", timedelta(hours=6), analyze))
    r.job(Job("store.evidence_log", timedelta(hours=1), purge_evidence_log))
