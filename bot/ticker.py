"""Simulated time: move a movable clock (FixedClock, the console's OffsetClock) forward as a
server ticking over that time would have, without ticking every simulated second.

The clock jumps from one job's due time to the next (its last start, from store/jobs.py, plus
its period), never by less than a *resolution*, and `Bot.tick` runs every job that is due
there. The resolution is five minutes for short advances and grows with the advance so that
one never takes more than `MAX_STOPS` ticks: a job whose period is shorter than the
resolution (the outbox every 30 s, digests and notifications every minute) runs once per
resolution instead — it catches up on whatever came due meanwhile — and the others run at
their own period as long as it is at least the resolution (`/clock +10d` runs an hourly job
every hour, `/clock +30d` every three hours). The resolution never exceeds the digests'
grace (`settings.digest_grace_hours`), past which a late digest is skipped instead of posted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from bot.core import Bot
from bot.types import Effect
from store import jobs as jobs_store
from store.db import ALL_TENANTS

MIN_RESOLUTION = timedelta(minutes=5)
MAX_STOPS = 240

Deliver = Callable[[list[Effect]], None]
Progress = Callable[[datetime, float], None]


@dataclass
class Advanced:
    """What an advance did: how many ticks, and how many runs of each job."""

    ticks: int = 0
    runs: Counter[str] = field(default_factory=Counter)

    @property
    def job_runs(self) -> int:
        return sum(self.runs.values())


def resolution_for(delta: timedelta, grace: timedelta | None = None) -> timedelta:
    """The shortest simulated interval between two ticks of an advance by `delta`."""
    wanted = max(MIN_RESOLUTION, delta / MAX_STOPS)
    if grace is not None:
        wanted = min(wanted, max(MIN_RESOLUTION, grace))
    return wanted


def _last_starts(bot: Bot) -> dict[str, datetime]:
    with bot.services.db.session(ALL_TENANTS, readonly=True) as session:
        return {name: row.last_started_at for name, row in jobs_store.runs(session).items()}


def _next_due(periods: dict[str, timedelta], every: dict[str, timedelta], last: dict[str, datetime],
              now: datetime) -> datetime | None:
    """The earliest simulated due time among the jobs: a job that never ran, or whose last start
    lies more than its period ahead (a clock moved back: store/jobs.py runs it), is due now."""
    due: list[datetime] = []
    for name, period in periods.items():
        started = last.get(name)
        if started is None or started > now + every[name]:
            due.append(now)
        else:
            due.append(started + period)
    return min(due, default=None)


def advance_clock(bot: Bot, delta: timedelta, deliver: Deliver, progress: Progress | None = None) -> Advanced:
    """Move the clock forward by `delta`, ticking at each due time (module docstring) and handing
    each tick's effects to `deliver` before the next tick. `progress(now, fraction)` is called
    after each tick. The clock always ends `delta` later, with a last tick there."""
    clock = bot.services.clock
    start = clock.now()
    end = start + delta
    grace = timedelta(hours=bot.services.settings.digest_grace_hours)
    resolution = resolution_for(delta, grace)
    every = {job.name: job.every for job in bot.registry.jobs}
    periods = {name: max(period, resolution) for name, period in every.items()}
    done = Advanced()
    last = _last_starts(bot)
    while (now := clock.now()) < end:
        due = _next_due(periods, every, last, now) or end
        stop = min(end, max(due, now + resolution))
        clock.advance(stop - now)  # type: ignore[attr-defined]
        at = clock.now()
        deliver(bot.tick(at))
        done.ticks += 1
        after = _last_starts(bot)
        done.runs.update(name for name, started in after.items() if started != last.get(name))
        last = after
        if progress is not None:
            progress(at, min(1.0, (at - start) / delta) if delta else 1.0)
    return done
