"""The durable inbox: throughput of ambient Slack messages through the inbox, and the delay
from acknowledgement to indexed.

  inbox_msgs_per_s_{pg_w1,pg_w2,pg_w4,sqlite}
      INBOX_MESSAGES signed-event payloads are written to the inbox as the Slack listener
      writes them; then N worker processes (bench/inbox_worker.py: the Slack adapter's real
      processor, the core's hooks, one transaction per message that also marks its row done)
      drain it. Rate = messages / time from start to the last row done.
  inbox_vs_raw_insert_{pg,sqlite}
      that rate with the most workers, divided by the rate of inserting the same messages
      (message row + hashtag rows) one transaction each, straight through the driver, in the
      same run: what one-event-one-commit durability costs at least.
  ack_to_indexed_p99_ms
      the real server (aiohttp + Bolt + inbox + worker threads) fed 100 signed events a
      second for INBOX_PACED_SECONDS; per event, from the inbox write just before the ack to
      its work committed (the row's done_at - received_at).
  inbox_{worker,server}_cpu_ms_per_msg_*, inbox_statements_per_msg_*, inbox_commits_per_msg_*
      what each drain cost per message, steadier than its rate on a shared machine: CPU of
      the worker processes (user + system, from "go" to the last row done) and of the
      PostgreSQL backends serving them (application name WORKER_APP, read from /proc when the
      server runs here), statements they sent (BEGIN/COMMIT and pool pings not included) and
      commits.
PostgreSQL: BENCH_PG_URL (a disposable database, created when missing); skipped with the
reason when unreachable. INBOX_PARTS (default sqlite,pg,paced), INBOX_PG_WORKERS (default
1,2,4) and INBOX_RAW=0 (no raw-insert comparison) run a part of it.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.bench_social import _pg_problem
from bench.org import build_org
from bot.clock import SystemClock
from store import inbox as inbox_store
from store.db import ALL_TENANTS, Database
from store.models.core import Conversation, Person
from store.models.inbox import InboxEvent
from store.models.social import Message, MessageTopic, Topic

ROOT = Path(__file__).resolve().parent.parent
TENANT = "TINBOX"
PEOPLE = 2000
CHANNELS = 20
MESSAGES = int(os.environ.get("INBOX_MESSAGES", "3000"))
PACED_SECONDS = float(os.environ.get("INBOX_PACED_SECONDS", "10"))
WORKER_APP = "causette-bench-inbox-worker"  # the workers' PostgreSQL application_name (libpq's PGAPPNAME)
TOPICS = ("rollout", "pricing", "kubernetes", "rgpd", "onboarding", "salon", "qualite", "support")


def _event(n: int) -> dict[str, Any]:
    channel, user = f"c{1 + n % (CHANNELS - 1)}", f"u{(n * 7919) % PEOPLE}"
    text_ = f"Update {n}: the #{TOPICS[n % len(TOPICS)]} work moves on, see #{TOPICS[(n // 3) % len(TOPICS)]} too"
    event = {"type": "message", "channel": channel, "channel_type": "channel", "user": user, "text": text_,
             "ts": f"{1764000000 + n}.{n % 1000000:06d}"}
    return {"token": "legacy", "team_id": TENANT, "api_app_id": "A0CAUSETTE", "type": "event_callback",
            "event_id": f"EvB{n:07d}", "event_time": 1764000000 + n, "event": event,
            "authorizations": [{"team_id": TENANT, "user_id": "UCAUSETTE", "is_bot": True}]}


def _fresh(url: str) -> Database:
    db = Database(url)
    db.drop_everything()
    db.upgrade()
    build_org(db, TENANT, PEOPLE, n_skills=500, platform="slack")
    with db.engine.begin() as conn:  # the benchmark's public channels, stated public in every event
        have = set(conn.execute(select(Conversation.external_id).where(Conversation.tenant == TENANT)).scalars())
        missing = [{"tenant": TENANT, "external_id": f"c{i}", "name": f"channel-{i}", "kind": "public", "indexing": True}
                   for i in range(1, CHANNELS) if f"c{i}" not in have]
        if missing:
            conn.execute(insert(Conversation), missing)
    return db


def _fill(db: Database, n: int) -> None:
    now = SystemClock().now()
    rows = [{"platform": "slack", "dedupe_key": f"event:{e['event_id']}", "kind": "event", "tenant": TENANT,
             "order_key": f"{TENANT}:{e['event']['channel']}", "payload": json.dumps({"body": e, "bot_user_id": "UCAUSETTE"}),
             "state": "pending", "attempts": 0, "received_at": now, "next_attempt_at": now, "locked_by": "",
             "locked_until": None, "last_error": "", "done_at": None} for e in map(_event, range(n))]
    with db.engine.begin() as conn:
        conn.execute(insert(InboxEvent), rows)


@dataclass
class Drain:
    """One timed drain: its rate, and what it cost per message (None where not measured)."""

    rate: float
    worker_cpu_ms: float
    server_cpu_ms: float | None
    statements: float
    commits: float


def _backends_cpu(db: Database) -> dict[int, float] | None:
    """CPU seconds (user + system) so far of every PostgreSQL backend serving the worker
    processes (application name WORKER_APP), read from /proc (None: not PostgreSQL, or not on
    this machine). The bench's own polling is not counted."""
    if db.dialect != "postgresql":
        return None
    with db.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND application_name = :app"), {"app": WORKER_APP}).scalars().all()
    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return cpu if cpu or not pids else None


def _drain_with(url: str, workers: int, threads: int) -> Drain:
    """Start `workers` processes, wait until they are warm, then time the drain; their CPU and
    that of the PostgreSQL backends serving them, from "go" to the last row done."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PGAPPNAME": WORKER_APP}
    procs = [subprocess.Popen([sys.executable, "-m", "bench.inbox_worker", url, str(threads)], cwd=ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    db = Database(url)
    costs: list[list[float]] = []
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        before = _backends_cpu(db)
        started = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        deadline = started + 600
        while time.perf_counter() < deadline:
            with db.session(ALL_TENANTS, readonly=True) as s:
                left = s.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state == "pending")) or 0
            if left == 0:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        after = _backends_cpu(db)
        for p in procs:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write("stop\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().split()
            if line and line[0] == "cost":
                costs.append([float(v) for v in line[1:]])
        with db.session(ALL_TENANTS, readonly=True) as s:
            done = s.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state == "done")) or 0
            indexed = s.scalar(select(func.count(Message.id))) or 0
        assert indexed >= done > 0, (indexed, done)
        server = None
        if before is not None and after is not None:
            server = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()) * 1000 / done
        total = [sum(c[i] for c in costs) for i in range(4)] if costs else [0.0] * 4
        return Drain(done / elapsed, total[0] * 1000 / done, server, total[1] / done, total[2] / done)
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
            if p.stdout is not None:
                p.stdout.close()
        db.dispose()


def _raw_insert_rate(url: str, n: int) -> float:
    """The same messages and hashtag links, one transaction each, straight through the driver."""
    db = Database(url)
    with db.engine.connect() as conn:
        people = dict(conn.execute(select(Person.external_id, Person.id).where(Person.tenant == TENANT)).all())
        convs = dict(conn.execute(select(Conversation.external_id, Conversation.id).where(Conversation.tenant == TENANT)).all())
    now = SystemClock().now()
    with db.engine.begin() as conn:
        conn.execute(insert(Topic), [{"tenant": TENANT, "key": f"raw{t}", "label": t, "created_at": now} for t in TOPICS])
        topic_ids = dict(conn.execute(select(Topic.label, Topic.id).where(Topic.key.like("raw%"))).all())
    started = time.perf_counter()
    for n_ in range(n):
        e = _event(n_)["event"]
        with db.engine.begin() as conn:
            mid = conn.execute(insert(Message).returning(Message.id), {
                "tenant": TENANT, "conversation_id": convs[e["channel"]], "author_id": people[e["user"]],
                "external_id": f"raw{e['ts']}", "text": e["text"], "sent_at": now, "permalink": "",
            }).scalar_one()
            conn.execute(insert(MessageTopic), [{"tenant": TENANT, "message_id": mid, "topic_id": topic_ids[t]}
                                                for t in {TOPICS[n_ % len(TOPICS)], TOPICS[(n_ // 3) % len(TOPICS)]}])
    rate = n / (time.perf_counter() - started)
    db.dispose()
    return rate


def _throughput(report: Any, url: str, label: str, worker_counts: tuple[int, ...]) -> None:
    rates: dict[int, float] = {}
    for workers in worker_counts:
        db = _fresh(url)
        _fill(db, MESSAGES)
        db.dispose()
        drain = _drain_with(url, workers, threads=2)
        rates[workers] = drain.rate
        suffix = f"_w{workers}" if label != "sqlite" else ""
        report.figure(f"inbox_msgs_per_s_{label}{suffix}", round(drain.rate, 1))
        report.figure(f"inbox_worker_cpu_ms_per_msg_{label}{suffix}", round(drain.worker_cpu_ms, 2))
        if drain.server_cpu_ms is not None:
            report.figure(f"inbox_server_cpu_ms_per_msg_{label}{suffix}", round(drain.server_cpu_ms, 2))
        report.figure(f"inbox_statements_per_msg_{label}{suffix}", round(drain.statements, 2))
        report.figure(f"inbox_commits_per_msg_{label}{suffix}", round(drain.commits, 3))
    if os.environ.get("INBOX_RAW", "1") == "0":
        return
    db = _fresh(url)
    db.dispose()
    raw = _raw_insert_rate(url, min(MESSAGES, 2000))
    report.figure(f"raw_insert_one_per_tx_msgs_per_s_{label}", round(raw, 1))
    report.figure(f"inbox_vs_raw_insert_{label}", round(rates[max(worker_counts)] / raw, 3))


def _paced(report: Any, url: str) -> None:
    """The real server at 100 events a second: ack → indexed."""
    from tests.harness.slack import SlackServer
    from bot.config import Settings
    from bot.context import Services
    from bot.core import Bot
    from bot.i18n import Prompts
    from handlers import build_registry

    spec = ROOT / "tests" / "specs" / "slack-web-openapi-v2.json"
    db = _fresh(url)
    services = Services(settings=Settings(database_url=url), db=db, prompts=Prompts.load(), clock=SystemClock(),
                        registry=build_registry())
    server = SlackServer(Bot(services), spec)
    try:
        total = int(100 * PACED_SECONDS)
        started = time.perf_counter()
        for n in range(total):
            due = started + n / 100
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            payload = _event(10_000_000 + n)
            payload["team_id"] = TENANT
            assert server.post_json(payload).status == 200
        server.drain()
        with db.session(ALL_TENANTS, readonly=True) as s:
            rows = s.execute(select(InboxEvent.received_at, InboxEvent.done_at).where(InboxEvent.state == "done")).all()
    finally:
        server.close()
        db.dispose()
    delays = sorted((done - received).total_seconds() * 1000 for received, done in rows)
    report.figure("ack_to_indexed_events", len(delays))
    report.figure("ack_to_indexed_p50_ms", round(statistics.median(delays), 1))
    report.figure("ack_to_indexed_p99_ms", round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 1))


def run(report: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parts = set(os.environ.get("INBOX_PARTS", "sqlite,pg,paced").split(","))
        if "sqlite" in parts:
            _throughput(report, f"sqlite:///{tmp}/inbox.db", "sqlite", (1,))
        pg = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test_inbox_bench")
        problem = _pg_problem(pg) if "pg" in parts else None
        if problem:
            print(f"# inbox_msgs_per_s_pg skipped: PostgreSQL unreachable at {pg} ({problem})", flush=True)
        elif "pg" in parts:
            workers = tuple(int(n) for n in os.environ.get("INBOX_PG_WORKERS", "1,2,4").split(","))
            _throughput(report, pg, "pg", workers)
        if "paced" in parts:
            _paced(report, f"sqlite:///{tmp}/paced.db")
