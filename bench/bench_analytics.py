"""Adoption analytics at scale (issue 15): 1,000,000 messages, 100,000 people, 10,000 channels,
26 weeks (BENCH_PEOPLE scales everything: 10 messages a person, a channel per 10 people).

The organisation comes from `bench.analytics_org.build` (bulk executemany into the real
tables). The days before the last are rolled up first (`rollup_backfill_s`, not a target), as
the hourly job would have done over the half-year; then a fresh process (`python -m
bench.bench_analytics measure …`) measures what a running bot does:

- `rollup_day_s`: the roll-up job (`handlers.stats.rollup_job`) for one day of new activity
  (the last day: a Monday), its own transactions and commits;
- `stats_channel_p50_ms` / `stats_channel_p99_ms`: `stats #channel` through the command's own
  code (`handlers.stats._report`: the permission check, the 7- and 28-day reports and their
  previous periods, the card) with the chart left out, as the channel's animator, over channels
  of every size (the biggest ones, then a spread over the size curve); `stats_channel_full_*`
  the same over the answers with figures only (a channel under the minimum group size answers
  "too small to show" at once);
- `stats_all_s`: `stats all` the same way, as an admin;
- `chart_ms`: `bot.charts.render_trend` of a 12-week series, warm (median of 20), and
  `chart_series_ms`: reading that series (`analytics.weekly_series`, the chart's data);
- `monthly_all_s` / `monthly_department_s`: one monthly référent report built
  (handlers.stats.monthly.build, chart included) for a workspace-wide référent (the whole
  organisation) and for a department's référent;
- `*_cpu_*`: the measuring process's own CPU time for the same work (on a busy shared machine
  the wall times include waiting for a CPU; on PostgreSQL the server's CPU is not in it);
- `stats_rss_mb`: the peak resident memory (ru_maxrss) of that measuring process, which only
  does the analytics phase (imports, roll-up, reports, chart); `stats_rss_base_mb` is its
  resident memory once imports and services were loaded, before any of it.

Each backend runs at two sizes, the given one and a quarter of it, and prints how every figure
grew (`*_growth_x4`: value at full size / value at a quarter). SQLite in a temporary file;
PostgreSQL in its own database (BENCH_ANALYTICS_PG_URL, default `bench_analytics` on the local
server, recreated; BENCH_ANALYTICS_PG=0 or BENCH_ANALYTICS_BACKENDS=sqlite skips it). BENCH_ANALYTICS_DIR keeps the prepared
databases (SQLite files there, PostgreSQL databases suffixed with the size) and measures them
again on a later run instead of loading them anew (migrated to the current schema first).
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

TENANT = "bench:analytics"
FIGURES = ("rollup_day_s", "stats_channel_p50_ms", "stats_channel_p99_ms", "stats_channel_full_p50_ms",
           "stats_channel_full_p99_ms", "stats_channel_cpu_p50_ms", "stats_channel_cpu_p99_ms", "stats_all_s", "stats_all_cpu_s",
           "chart_cpu_ms", "chart_ms", "chart_series_ms",
           "monthly_all_s", "monthly_all_cpu_s", "monthly_department_s", "monthly_department_cpu_s", "stats_rss_mb")
SAMPLE_CHANNELS = 300
CHART_RUNS = 20


def _pg_url() -> str:
    return os.environ.get("BENCH_ANALYTICS_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_analytics")


def _recreate_pg(url: str) -> str | None:
    """Drop and create the benchmark's own database; a reason when the server is unusable."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from store.db import Database

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = target.database or ""
    if not name.replace("_", "").isalnum() or name in ("test", "postgres"):
        return f"refusing database name {name!r}"
    try:
        admin = Database(target.set(database="postgres").render_as_string(hide_password=False))
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - a missing server skips the PostgreSQL run
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


def prepare(url: str, n_people: int) -> dict[str, Any]:
    """Load the organisation and roll up every day but the last; returns what it took."""
    from bench.analytics_org import END, build
    from store import analytics
    from store.db import Database

    db = Database(url)
    db.upgrade()
    started = time.perf_counter()
    org = build(db, TENANT, n_people)
    generate = time.perf_counter() - started
    last = (END - timedelta(days=1)).date()
    started = time.perf_counter()
    with db.session(TENANT, readonly=True) as s:
        days = [d for d in analytics.pending_days(s, END.date()) if d < last]
    for day in days:
        with db.session(TENANT) as s:
            analytics.rollup_day(s, TENANT, day)
    backfill = time.perf_counter() - started
    db.analyze()
    db.dispose()
    return {"generate_s": generate, "rollup_backfill_s": backfill, "backfill_days": len(days), **org.counts}


def measure(url: str) -> dict[str, Any]:
    """The analytics phase, in a process of its own (see the module docstring)."""
    from sqlalchemy import delete, select

    from bench.analytics_org import END
    from bot.charts import ChartLabels, render_trend, warm_up
    from bot.clock import FixedClock
    from bot.config import Settings
    from bot.context import Ctx, JobCtx, Services
    from bot.i18n import Prompts
    from handlers import build_registry
    import handlers.stats as stats
    from store import analytics
    from store.analytics import Scope, Viewer
    from store.db import ALL_TENANTS, Database
    from store.models.core import Conversation, Person, Role, Workspace

    db = Database(url)
    now = END + timedelta(hours=1)  # Tuesday 01:00 UTC: Monday is the day to roll up
    services = Services(settings=Settings(database_url=url, admins=["u0"]), db=db, prompts=Prompts.load(),
                        clock=FixedClock(now), registry=build_registry())
    warm_up()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {"stats_rss_base_mb": base}

    last = (now - timedelta(days=1)).date()
    with db.session(TENANT) as session:  # a kept database measured again: its last day not rolled up yet
        session.execute(delete(analytics.ActivityDay).where(analytics.ActivityDay.day == last))
        session.execute(delete(analytics.RollupDay).where(analytics.RollupDay.day == last))
    started = time.perf_counter()
    with db.session(ALL_TENANTS) as session:
        stats.rollup_job(JobCtx(services, session, now))
    out["rollup_day_s"] = time.perf_counter() - started
    with db.session(TENANT, readonly=True) as s:
        out["rollup_day_rows"] = int(s.scalar(select(analytics.RollupDay.rows).where(analytics.RollupDay.day == now.date() - timedelta(days=1))) or 0)
        out["pending_after"] = len(analytics.pending_days(s, now.date()))

    with db.session(TENANT, readonly=True) as s:
        channels = list(s.execute(select(Conversation.id, Conversation.name, Conversation.member_count, Role.person_id)
                                  .join(Role, Role.conversation_id == Conversation.id)
                                  .where(Role.role == "animator").order_by(Conversation.member_count.desc(), Conversation.id)))
    picked = channels[:10] + channels[10::max(1, (len(channels) - 10) // (SAMPLE_CHANNELS - 10))]
    picked = picked[:SAMPLE_CHANNELS]
    request = stats.Request("channel")
    stats._chart = lambda *a, **k: None  # the chart is timed apart (chart_ms)
    timings: list[float] = []
    keys: dict[str, int] = {}
    cpu: list[float] = []  # this process's CPU time per report (the wall time includes waiting for a CPU)
    full: list[float] = []  # the replies with figures (not "too small to show" nor "nothing yet")
    by_size: list[tuple[int, float]] = []
    for cid, name, members, animator in picked:
        with db.session(TENANT) as session:
            workspace = session.get(Workspace, TENANT)
            ctx = Ctx.for_person(services, session, workspace, session.get(Person, animator))
            t0, c0 = time.perf_counter(), time.process_time()
            reply = stats._report(ctx, Scope("channel", cid), f"#{name}", request)
            elapsed = (time.perf_counter() - t0) * 1000
            cpu.append((time.process_time() - c0) * 1000)
            session.rollback()
        assert reply.key in ("stats.report", "stats.no_activity", "stats.too_small"), reply.key
        keys[reply.key] = keys.get(reply.key, 0) + 1
        timings.append(elapsed)
        if reply.key == "stats.report":
            full.append(elapsed)
        by_size.append((members, elapsed))
    timings.sort()
    out["stats_channel_n"] = len(timings)
    out["stats_channel_p50_ms"] = statistics.median(timings)
    out["stats_channel_p99_ms"] = timings[max(0, int(len(timings) * 0.99) - 1)]
    out["stats_channel_answers"] = keys
    cpu.sort()
    out["stats_channel_cpu_p50_ms"] = statistics.median(cpu)
    out["stats_channel_cpu_p99_ms"] = cpu[max(0, int(len(cpu) * 0.99) - 1)]
    full.sort()
    if full:
        out["stats_channel_full_p50_ms"] = statistics.median(full)
        out["stats_channel_full_p99_ms"] = full[max(0, int(len(full) * 0.99) - 1)]
    out["stats_channel_biggest"] = [(m, round(ms, 1)) for m, ms in by_size[:3]]

    with db.session(TENANT) as session:
        workspace = session.get(Workspace, TENANT)
        admin = session.scalar(select(Person).where(Person.external_id == "u0"))
        ctx = Ctx.for_person(services, session, workspace, admin)
        t0, c0 = time.perf_counter(), time.process_time()
        reply = stats._report(ctx, Scope("all"), "", request)
        out["stats_all_s"] = time.perf_counter() - t0
        out["stats_all_cpu_s"] = time.process_time() - c0
        assert reply.key == "stats.report", reply.key
        session.rollback()

        # The monthly référent report (handlers/stats/monthly.py) for October, chart included:
        # the organisation (a workspace-wide référent who is admin) and one department.
        from handlers.stats import monthly
        from store.models.core import Role as RoleRow

        session.add(RoleRow(person_id=admin.id, role="referent", conversation_id=None, scope_kind=None, scope_value=""))
        other = session.scalar(select(Person).where(Person.external_id == "u1"))
        session.add(RoleRow(person_id=other.id, role="referent", conversation_id=None, scope_kind="department",
                            scope_value=other.department))
        session.flush()
        for name, who in (("monthly_all_s", admin), ("monthly_department_s", other)):
            ctx = Ctx.for_person(services, session, workspace, who)
            t0, c0 = time.perf_counter(), time.process_time()
            dm = monthly.build(ctx, date(2026, 11, 1), now)
            out[name] = time.perf_counter() - t0
            out[name.replace("_s", "_cpu_s")] = time.process_time() - c0
            assert dm.reply.key == "stats.monthly.report", dm.reply.key
        session.rollback()

        biggest = channels[1][0] if len(channels) > 1 else channels[0][0]  # the biggest team channel
        t0 = time.perf_counter()
        points = analytics.weekly_series(session, Viewer(admin.id, True), Scope("channel", biggest), (now - timedelta(days=1)).date(), 12)
        out["chart_series_ms"] = (time.perf_counter() - t0) * 1000
        def t(key: str, **params: object) -> str:
            return services.prompts.t("fr", key, **params)

        labels = ChartLabels.of(t)
        runs, runs_cpu = [], []
        for _ in range(CHART_RUNS):
            t0, c0 = time.perf_counter(), time.process_time()
            picture = render_trend(points, title="#projet-équipe-" + "très-longue-" * 3, labels=labels, locale="fr")
            runs.append((time.perf_counter() - t0) * 1000)
            runs_cpu.append((time.process_time() - c0) * 1000)
        out["chart_ms"] = statistics.median(runs)
        out["chart_cpu_ms"] = statistics.median(runs_cpu)
        out["chart_bytes"] = len(picture.png)
    out["stats_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    db.dispose()
    return out


def _one(url: str, n_people: int, label: str) -> dict[str, Any]:
    kept = Path(os.environ["BENCH_ANALYTICS_DIR"]) / f"prepared-{label}-{n_people}.json" if os.environ.get("BENCH_ANALYTICS_DIR") else None
    if kept is not None and kept.exists():  # a database prepared by an earlier run, kept: measured again as it is
        prep = json.loads(kept.read_text())
        from store.db import Database

        db = Database(url)  # brought to the code's schema (a later migration), its statistics refreshed
        db.upgrade()
        db.analyze()
        db.dispose()
    else:
        prep = prepare(url, n_people)
        if kept is not None:
            kept.write_text(json.dumps(prep))
    print(f"# {label} {n_people} people: {prep.get('messages')} messages ({prep.get('replies')} replies), "
          f"{prep.get('memberships')} memberships, {prep.get('reactions')} reactions, {prep.get('ideas')} ideas, "
          f"{prep.get('help_requests')} help requests, {prep.get('kudos')} kudos; generated in {prep['generate_s']:.1f} s; "
          f"{prep['backfill_days']} days rolled up in {prep['rollup_backfill_s']:.1f} s", flush=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-m", "bench.bench_analytics", "measure", url], capture_output=True, text=True,
                          env=env, cwd=str(Path(__file__).resolve().parent.parent), timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"measuring process failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"# {label} {n_people} people: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in figures.items()), flush=True)
    return {**prep, **figures}


def _load() -> str:
    with contextlib.suppress(OSError):
        one, five, _ = os.getloadavg()
        return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"
    return "load unknown"


def run(report: Any) -> None:
    n = report.people()
    quarter = max(400, n // 4)
    backends: list[tuple[str, str]] = []
    tmp = tempfile.TemporaryDirectory()
    try:
        chosen = os.environ.get("BENCH_ANALYTICS_BACKENDS", "sqlite,pg").split(",")
        if "sqlite" in chosen:
            backends.append(("sqlite", ""))
        if "pg" in chosen and os.environ.get("BENCH_ANALYTICS_PG", "1") != "0":
            backends.append(("pg", "_pg"))
        for name, suffix in backends:
            results = {}
            for size in (n, quarter):
                keep = os.environ.get("BENCH_ANALYTICS_DIR")
                if name == "sqlite":
                    url = f"sqlite:///{Path(keep or tmp.name) / f'analytics-{size}.db'}"
                    if keep and not (Path(keep) / f"prepared-sqlite-{size}.json").exists():
                        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                else:
                    url = _pg_url() + (f"_{size}" if keep else "")
                    problem = None if keep and (Path(keep) / f"prepared-pg-{size}.json").exists() else _recreate_pg(url)
                    if problem:
                        print(f"# analytics on PostgreSQL skipped: {problem}", flush=True)
                        break
                print(f"# {_load()}", flush=True)
                results[size] = _one(url, size, name)
                if name == "sqlite" and not keep:
                    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            if n not in results:
                continue
            full = results[n]
            report.figure(f"analytics_generate_s{suffix}", full["generate_s"])
            report.figure(f"rollup_backfill_s{suffix}", full["rollup_backfill_s"])
            for figure in FIGURES:
                if figure in full:
                    report.figure(f"{figure}{suffix}", full[figure])
            if quarter in results:
                small = results[quarter]
                for figure in ("generate_s", "rollup_backfill_s", *FIGURES):
                    if small.get(figure) and figure in full:
                        report.figure(f"{figure}{suffix}_growth_x{n / quarter:g}", full[figure] / small[figure])
    finally:
        tmp.cleanup()


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "measure":
    print(json.dumps(measure(sys.argv[2]), default=str))
