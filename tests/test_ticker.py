"""`Bot.tick`: each job runs once per period (`Job.every`), across every process on the
database; a failing job is recorded and does not stop the others; the console ticks in the
background only when a person is typing at a terminal."""
from __future__ import annotations

import io
import logging
import re
import threading
import time
from datetime import timedelta
from typing import Callable, Iterator

import pytest

from adapters.console.messenger import ConsoleMessenger
from bot.clock import FixedClock
from bot.config import Settings
from bot.context import JobCtx, Services
from bot.core import Bot
from bot.ticker import MAX_STOPS, advance_clock, resolution_for
from bot.i18n import Prompts
from bot.registry import Job, Registry
from bot.types import Effect, Outbound, Reply, UserRef
from handlers import build_registry
from store import jobs as jobs_store
from store.db import ALL_TENANTS, Database
from store.models.jobs import JobRun

TENANT = "T1"


class Runs:
    """Jobs that count their runs (thread-safe: several bots may share one)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []
        self._lock = threading.Lock()

    def job(self, name: str, every: timedelta, *, pause: float = 0.0, fail: bool = False) -> Job:
        def run(jctx: JobCtx) -> list[Effect]:
            with self._lock:
                self.seen.append((name, jctx.now))
            time.sleep(pause)
            if fail:
                raise RuntimeError(f"{name} exploded")
            to = UserRef("console", TENANT, "sophie", "Sophie")
            return [Outbound(Reply(text=f"{name} ran", key=f"test.{name}"), to=to)]

        return Job(name, every, run)

    def count(self, name: str) -> int:
        with self._lock:
            return sum(1 for n, _ in self.seen if n == name)


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def make_bot(settings: Settings, clock: FixedClock, prompts: Prompts) -> Iterator[Callable[..., Bot]]:
    """Bots on the test database, each with a Database of its own (its own engine and pool,
    like a separate process), running the given jobs."""
    opened: list[Database] = []

    def make(*jobs: Job) -> Bot:
        registry = Registry()
        for job in jobs:
            registry.job(job)
        db = Database(settings.database_url)
        opened.append(db)
        return Bot(Services(settings=settings, db=db, prompts=prompts, clock=clock, registry=registry))

    yield make
    for db in opened:
        db.dispose()


def job_runs(bot: Bot) -> dict[str, JobRun]:
    with bot.services.db.session(ALL_TENANTS, readonly=True) as s:
        return jobs_store.runs(s)


def texts(effects: list[Effect]) -> list[str]:
    return [e.reply.text for e in effects if isinstance(e, Outbound)]


def test_a_job_runs_once_per_period(make_bot, runs: Runs, clock: FixedClock) -> None:
    bot = make_bot(runs.job("hourly", timedelta(hours=1)))
    t = clock.now()
    assert texts(bot.tick(t)) == ["hourly ran"]
    assert bot.tick(t + timedelta(seconds=30)) == []
    assert bot.tick(t + timedelta(minutes=59, seconds=59)) == []
    assert texts(bot.tick(t + timedelta(hours=1))) == ["hourly ran"]
    assert runs.count("hourly") == 2
    row = job_runs(bot)["hourly"]
    assert row.last_started_at == t + timedelta(hours=1)
    assert row.last_finished_at is not None and row.last_finished_at >= row.last_started_at
    assert row.last_error is None


def test_frequent_jobs_keep_their_cadence_under_a_fast_tick(make_bot, runs: Runs, clock: FixedClock) -> None:
    bot = make_bot(runs.job("minutely", timedelta(minutes=1)), runs.job("hourly", timedelta(hours=1)))
    t = clock.now()
    for second in range(0, 181, 5):  # the server ticks every 5 s
        bot.tick(t + timedelta(seconds=second))
    assert runs.count("minutely") == 4  # 0 s, 60 s, 120 s, 180 s
    assert runs.count("hourly") == 1


def test_advancing_a_test_clock_runs_each_job_once_per_elapsed_period(make_bot, runs: Runs, clock: FixedClock) -> None:
    bot = make_bot(runs.job("hourly", timedelta(hours=1)), runs.job("six-hourly", timedelta(hours=6)))
    start = clock.now()
    delivered: list[str] = []
    advance_clock(bot, timedelta(hours=2), lambda effects: delivered.extend(texts(effects)))
    assert clock.now() == start + timedelta(hours=2)
    assert delivered.count("hourly ran") == 2  # at +5 min (first tick) and +65 min
    assert delivered.count("six-hourly ran") == 1
    assert [when for name, when in runs.seen if name == "hourly"] == [start + timedelta(minutes=5),
                                                                      start + timedelta(minutes=65)]


def test_advancing_jumps_from_one_due_time_to_the_next(make_bot, runs: Runs, clock: FixedClock) -> None:
    """Ten hours with an hourly job: 11 ticks (ten runs and the end), not 120 five-minute steps."""
    bot = make_bot(runs.job("hourly", timedelta(hours=1)))
    start = clock.now()
    done = advance_clock(bot, timedelta(hours=10), lambda effects: None)
    assert [when - start for name, when in runs.seen] == [timedelta(minutes=5 + 60 * h) for h in range(10)]
    assert done.ticks == 11 and done.runs == {"hourly": 10}
    assert clock.now() == start + timedelta(hours=10)


def test_a_month_takes_a_bounded_number_of_ticks_and_long_periods_keep_theirs(make_bot, runs: Runs,
                                                                               clock: FixedClock) -> None:
    bot = make_bot(runs.job("minutely", timedelta(minutes=1)), runs.job("hourly", timedelta(hours=1)),
                   runs.job("daily", timedelta(days=1)))
    start = clock.now()
    seen: list[float] = []
    done = advance_clock(bot, timedelta(days=30), lambda effects: None, lambda now, fraction: seen.append(fraction))
    assert resolution_for(timedelta(days=30)) == timedelta(hours=3)
    assert done.ticks == MAX_STOPS == len(seen)
    assert seen == sorted(seen) and seen[-1] == 1.0  # the progress reaches the end once per tick
    # Shorter than the resolution: once a tick; the daily job once a day.
    assert done.runs == {"minutely": MAX_STOPS, "hourly": MAX_STOPS, "daily": 30}
    assert runs.count("daily") == 30 and runs.count("minutely") == MAX_STOPS
    assert clock.now() == start + timedelta(days=30)


def test_the_resolution_grows_with_the_advance_up_to_the_digests_grace() -> None:
    assert resolution_for(timedelta(days=2)) == timedelta(minutes=12)
    assert resolution_for(timedelta(hours=2)) == timedelta(minutes=5)
    assert resolution_for(timedelta(days=365), grace=timedelta(hours=6)) == timedelta(hours=6)  # no digest skipped


def test_a_month_of_the_real_jobs_in_the_console(bot: Bot) -> None:
    """`/clock +30d` on the demo: every real job runs, a bounded number of times, and the
    reminders to the whole company are one line each."""
    from adapters.console.seed import seed_demo
    from store.demo import DEMO_TENANT

    seed_demo(bot)
    out = io.StringIO()
    console = ConsoleMessenger(bot, DEMO_TENANT, "sophie", out=out)
    console.handle_line("/clock +30d")
    shown = out.getvalue()
    ticks, runs, messages, recipients = (int(n.replace(",", "")) for n in re.search(
        r"\+30d: (\d+) clock ticks, ([\d,]+) job runs, messages: (\d+) \(recipients: (\d+)\)", shown).groups())
    assert ticks == MAX_STOPS
    rows = job_runs(bot)
    assert set(rows) == {job.name for job in bot.registry.jobs}
    assert ticks * 5 <= runs <= ticks * len(rows)  # the five frequent jobs at every tick, no job more often
    lines = shown.splitlines()
    reminders = [line for line in lines if line.startswith("→ @") and "(DM) Causette:" in line]
    assert len(reminders) == messages == recipients > 10  # one stale-skills reminder each, one line each
    assert all(len(line.split("Causette: ", 1)[1]) <= 100 for line in reminders)
    assert not any(line.startswith("│ [1]") for line in lines)  # their buttons are theirs to see


def test_bots_ticking_at_the_same_moment_run_a_job_once(make_bot, runs: Runs, clock: FixedClock) -> None:
    bots = [make_bot(runs.job("hourly", timedelta(hours=1), pause=0.05)) for _ in range(4)]
    t = clock.now()
    for hour in range(3):
        now = t + timedelta(hours=hour)
        barrier = threading.Barrier(len(bots))
        effects: list[list[Effect]] = [[] for _ in bots]

        def tick(i: int, now=now, barrier=barrier, effects=effects) -> None:
            barrier.wait()
            effects[i] = bots[i].tick(now)

        threads = [threading.Thread(target=tick, args=(i,)) for i in range(len(bots))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert runs.count("hourly") == hour + 1
        assert sum(len(e) for e in effects) == 1  # one bot delivers the run's message


def test_a_failing_job_is_logged_and_recorded_and_the_others_still_run(make_bot, runs: Runs, clock: FixedClock,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    bot = make_bot(runs.job("before", timedelta(hours=1)), runs.job("boom", timedelta(hours=1), fail=True),
                   runs.job("after", timedelta(hours=1)))
    t = clock.now()
    with caplog.at_level(logging.ERROR, logger="bot.core"):
        assert texts(bot.tick(t)) == ["before ran", "after ran"]
    assert any("boom" in r.getMessage() and r.exc_info for r in caplog.records)
    rows = job_runs(bot)
    assert rows["boom"].last_error == "RuntimeError: boom exploded"
    assert rows["boom"].last_finished_at is not None
    assert rows["before"].last_error is None and rows["after"].last_error is None
    assert bot.tick(t + timedelta(minutes=1)) == []  # a failure waits for its next period too
    assert runs.count("boom") == 1
    bot.tick(t + timedelta(hours=1))
    assert runs.count("boom") == 2


def test_a_clock_moved_back_does_not_stop_the_jobs(make_bot, runs: Runs, clock: FixedClock) -> None:
    """A console restarted after `/clock +1w` starts again from the real time."""
    bot = make_bot(runs.job("hourly", timedelta(hours=1)))
    t = clock.now()
    bot.tick(t + timedelta(weeks=1))
    assert texts(bot.tick(t)) == ["hourly ran"]
    assert bot.tick(t + timedelta(minutes=30)) == []


def test_the_real_jobs_honour_their_periods(bot: Bot, clock: FixedClock) -> None:
    """The database upkeep used to run at every tick of every worker (analyze throttled by hand)."""
    t = clock.now()
    bot.tick(t)
    started = {name: row.last_started_at for name, row in job_runs(bot).items()}
    assert set(started) == {job.name for job in build_registry().jobs}
    assert set(started.values()) == {t}
    bot.tick(t + timedelta(minutes=5))
    after = {name: row.last_started_at for name, row in job_runs(bot).items()}
    frequent = {job.name for job in bot.registry.jobs if job.every <= timedelta(minutes=5)}
    assert {"digests", "notifications.flush", "help.escalate"} <= frequent
    assert {n for n in after if after[n] != t} == frequent
    assert after["store.analyze"] == after["store.evidence_log"] == after["social.retention"] == t


def test_a_scripted_console_ticks_only_on_clock(make_bot, runs: Runs) -> None:
    bot = make_bot(runs.job("minutely", timedelta(minutes=1)))
    out = io.StringIO()
    console = ConsoleMessenger(bot, TENANT, "sophie", out=out)
    console.run(io.StringIO("/users\n/channels\n/users\n"), tick_seconds=0.01)
    assert runs.count("minutely") == 0
    console.run(io.StringIO("/clock +15m\n"), tick_seconds=0.01)  # a tick every 5 simulated minutes
    assert runs.count("minutely") == 3
    assert out.getvalue().count("minutely ran") == 3


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_interactive_console_runs_due_jobs_in_the_background(make_bot, runs: Runs,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bot = make_bot(runs.job("minutely", timedelta(minutes=1)))
    out = io.StringIO()
    console = ConsoleMessenger(bot, TENANT, "sophie", out=out)

    def typing(prompt: str) -> str:
        deadline = time.monotonic() + 10
        while runs.count("minutely") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # let the ticker print
        raise EOFError

    monkeypatch.setattr("builtins.input", typing)
    console.run(_Terminal(), tick_seconds=0.05)
    assert runs.count("minutely") == 1  # the clock does not move by itself: once per period
    assert "Causette: minutely ran" in out.getvalue()
