"""The durable outbox's sweeper (bot/outbox.py): every tick, send the effects a crash left
unsent or a platform refused for now. Named so it runs after the jobs whose effects it takes
(jobs run in module order: digests, help_requests, notifications… then outbox)."""
from __future__ import annotations

from datetime import timedelta
from typing import Sequence

from bot import outbox
from bot.context import JobCtx
from bot.registry import Job, Registry
from bot.types import Effect
from store import outbox as store

KEEP_SENT = timedelta(days=2)


def send(jctx: JobCtx) -> Sequence[Effect]:
    services = jctx.services
    effects = outbox.sweep(services.db, services.clock, services.deliver)
    store.purge_sent(services.db, jctx.now - KEEP_SENT, limit=500)
    store.purge_steps(services.db, jctx.now - KEEP_SENT)
    return effects


def register(r: Registry) -> None:
    r.job(Job("outbox.send", timedelta(seconds=30), send))
