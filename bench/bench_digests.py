"""Digest building at scale: 1,000,000 messages, 100,000 people, 10,000 channels.

People come from `bench.org.build_org`; channels, memberships, messages, ideas, votes, help
requests, kudos and one weekly digest per channel are bulk-loaded here with SQLAlchemy Core
inserts, in chunks (nothing is held in memory whole). Channel sizes and activity are skewed
(a few busy channels, many quiet ones). Then the clock is set just after Monday 09:00 Paris
and the real engine runs:

- `digest_p50_ms` / `digest_p99_ms`: one digest claimed, built, rendered and queued
  (`engine.claim_due`, its own transaction and commit);
- `digest_all_10k_s`: every digest claimed, built and queued, then every delivery sent
  through a no-op adapter (`engine.deliver_pending`, paced per tick as in production);
- `digest_rss_mb`: the process's peak resident memory, loading included;
- `digest_cpu_p50_ms` / `digest_cpu_p99_ms`: the CPU time of one digest (on a busy shared
  machine the wall times above include waiting for a CPU).

SQLite in a temporary file (the default backend). BENCH_PEOPLE scales people and messages
down together (10 messages per person; channels stay at one per 10 people).
"""
from __future__ import annotations

import json
import random
import resource
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import func, insert, select

from bot.clock import FixedClock
from bot.config import Settings
from bot.context import Services
from handlers.digests import engine
from handlers.digests.content import Sources
from bot.i18n import Prompts
from handlers import build_registry
from store import digests as digest_store
from store.db import ALL_TENANTS, Database
from store.models.contribution import HelpRequest, Idea, IdeaVote, Kudos
from store.models.core import Conversation, ConversationMember, Person
from store.models.digests import Digest, DigestDelivery
from store.models.social import Message

TENANT = "bench:digests"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)   # Monday
DUE = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)   # next Monday 09:00 in Paris
HISTORY = timedelta(weeks=8)
CHUNK = 20000


def _insert(conn: Any, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.execute(insert(table), chunk)
            chunk = []
    if chunk:
        conn.execute(insert(table), chunk)


def _people(db: Database, n_people: int) -> list[int]:
    try:
        from bench.org import build_org
    except ImportError:  # the shared organisation builder is absent: a plain bulk insert
        build_org = None
    if build_org is not None:
        build_org(db, TENANT, n_people, n_skills=2000)
    else:
        with db.engine.begin() as conn:
            _insert(conn, Person.__table__, ({"tenant": TENANT, "external_id": f"u{i}", "handle": f"user{i}",
                                              "display_name": f"Person {i}", "email": "", "title": "", "department": "",
                                              "site": "", "tz": "Europe/Paris", "languages": "", "locale": None,
                                              "avatar_url": "", "is_bot": False, "active": True, "accepts_mentions": True,
                                              "profile_synced_at": None, "created_at": NOW, "updated_at": NOW}
                                             for i in range(n_people)))
    with db.engine.connect() as conn:
        return [pid for (pid,) in conn.execute(select(Person.id).where(Person.tenant == TENANT).order_by(Person.id))]


def load(db: Database, n_people: int, n_channels: int, n_messages: int, rng: random.Random) -> None:
    people = _people(db, n_people)
    with db.engine.begin() as conn:
        first_channel = (conn.execute(select(func.max(Conversation.id))).scalar() or 0) + 1
        sizes = [min(n_people, 5 + int(3000 * rng.random() ** 6)) for _ in range(n_channels)]
        _insert(conn, Conversation.__table__, ({
            "tenant": TENANT, "external_id": f"bench-c{i}", "name": f"team-{i}", "kind": "private" if i % 50 == 0 else "public",
            "language": "fr" if i % 2 else "en", "tz": "Europe/Paris", "bot_member": True, "indexing": True,
            "member_count": sizes[i], "created_at": NOW - timedelta(days=800)} for i in range(n_channels)))
        channels = list(range(first_channel, first_channel + n_channels))

        def members() -> Iterator[dict[str, Any]]:  # 20 rows per channel, two of them joined this week
            for index, cid in enumerate(channels):
                for k, pid in enumerate(rng.sample(people, min(20, len(people)))):
                    joined = DUE - timedelta(days=rng.random() * 6) if k < 2 else NOW - timedelta(days=300)
                    yield {"tenant": TENANT, "conversation_id": cid, "person_id": pid, "joined_at": joined}

        _insert(conn, ConversationMember.__table__, members())
        weights = [s ** 0.7 for s in sizes]
        total = sum(weights)
        cumulative: list[float] = []
        acc = 0.0
        for w in weights:
            acc += w / total
            cumulative.append(acc)

        def pick_channel() -> int:
            x = rng.random()
            lo, hi = 0, len(cumulative) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if cumulative[mid] < x:
                    lo = mid + 1
                else:
                    hi = mid
            return channels[lo]

        span = (DUE - NOW + HISTORY).total_seconds()

        def messages() -> Iterator[dict[str, Any]]:
            for i in range(n_messages):
                replies = int(rng.random() ** 4 * 40)
                yield {"tenant": TENANT, "conversation_id": pick_channel(), "external_id": f"m{i}",
                       "author_id": people[rng.randrange(len(people))], "thread_external_id": None,
                       "text": f"Message {i} about pricing, kubernetes and the Airbus bid — with some more words to read",
                       "permalink": f"https://bench.example/archives/m{i}", "sent_at": DUE - timedelta(seconds=rng.random() * span),
                       "edited_at": None, "reply_count": replies, "reaction_count": int(rng.random() ** 3 * 10), "deleted": False}

        _insert(conn, Message.__table__, messages())
        n_ideas = n_messages // 50
        first_idea = (conn.execute(select(func.max(Idea.id))).scalar() or 0) + 1
        _insert(conn, Idea.__table__, ({
            "tenant": TENANT, "number": i + 1, "title": f"Idea {i}: share client travel", "details": "", "tags": "",
            "author_id": people[rng.randrange(len(people))], "anonymous": i % 7 == 0, "status": "open", "decline_reason": "",
            "campaign_id": None, "conversation_id": pick_channel(), "source_permalink": f"https://bench.example/i{i}",
            "vote_count": int(rng.random() ** 3 * 30), "created_at": DUE - timedelta(seconds=rng.random() * span),
            "updated_at": NOW} for i in range(n_ideas)))
        _insert(conn, IdeaVote.__table__, ({  # three distinct voters per idea
            "tenant": TENANT, "idea_id": first_idea + idea, "person_id": people[(idea * 31 + k * 977) % len(people)],
            "created_at": DUE - timedelta(seconds=rng.random() * span)} for idea in range(n_ideas) for k in range(3)))
        _insert(conn, HelpRequest.__table__, ({
            "tenant": TENANT, "source_key": f"h{i}", "number": i + 1, "asker_id": people[rng.randrange(len(people))],
            "question": f"Who knows the Safran file? ({i})", "topics": "", "conversation_id": pick_channel(),
            "conversation_external_id": "", "thread_id": "", "permalink": f"https://bench.example/h{i}",
            "status": "open" if i % 3 else "resolved", "claimer_id": None, "claimed_at": None, "answered_at": None,
            "resolved_at": None, "resolved_by": None, "helper_id": None, "answer": "", "escalate_at": None, "escalated_at": None,
            "created_at": DUE - timedelta(seconds=rng.random() * span)} for i in range(n_ideas)))
        _insert(conn, Kudos.__table__, ({
            "tenant": TENANT, "giver_id": people[rng.randrange(len(people))], "recipient_id": people[rng.randrange(len(people))],
            "reason": "for the Airbus quote", "skills": "", "conversation_id": pick_channel(), "help_request_id": None,
            "weight": 1.0, "created_at": DUE - timedelta(seconds=rng.random() * span)} for _ in range(n_ideas * 2)))
        sources = Sources().dumps()
        _insert(conn, Digest.__table__, ({
            "tenant": TENANT, "kind": "channel", "conversation_id": cid, "person_id": None, "created_by": None,
            "frequency": "weekly", "cron": "0 9 * * 1", "tz": "Europe/Paris", "sources": sources, "status": "active",
            "next_run_at": DUE, "created_at": NOW, "updated_at": NOW} for cid in channels))


def run(report: Any) -> None:
    n_people = report.people()
    n_channels = max(10, n_people // 10)
    n_messages = n_people * 10
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'digests.db'}"
        db = Database(url)
        db.upgrade()
        started = time.perf_counter()
        load(db, n_people, n_channels, n_messages, rng)
        print(f"# loaded {n_people} people, {n_channels} channels, {n_messages} messages in {time.perf_counter() - started:.1f} s",
              flush=True)
        clock = FixedClock(DUE + timedelta(minutes=1))
        services = Services(settings=Settings(database_url=url), db=db, prompts=Prompts.load(), clock=clock,
                            registry=build_registry())
        sent = 0

        def deliver(effects: Any) -> None:
            nonlocal sent
            sent += len(effects)

        services.deliver = deliver
        timings: list[float] = []
        cpu: list[float] = []
        outcomes: dict[str, int] = {}
        started = time.perf_counter()
        while True:
            with db.session(ALL_TENANTS) as session:
                due = digest_store.due(session, clock.now(), engine.DUE_PER_TICK)
            if not due:
                break
            for digest_id, tenant in due:
                t0, c0 = time.perf_counter(), time.thread_time()
                outcome = engine.claim_due(services, digest_id, tenant, clock.now())
                timings.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            engine.deliver_pending(services, clock.now())
        while engine.deliver_pending(services, clock.now()) or _pending(db):
            pass
        total = time.perf_counter() - started
        with db.engine.connect() as conn:
            sample = conn.execute(select(DigestDelivery.payload).order_by(DigestDelivery.id).limit(1)).scalar()
        size = len(sample.encode()) if sample else 0
        print(f"# outcomes {json.dumps(outcomes)}; posts delivered {sent}; first payload {size} bytes", flush=True)
        timings.sort()
        report.figure("digest_count", len(timings))
        report.figure("digest_p50_ms", statistics.median(timings))
        report.figure("digest_p99_ms", timings[int(len(timings) * 0.99) - 1])
        cpu.sort()  # CPU time per digest: what the wall time is on an idle machine, minus I/O
        report.figure("digest_cpu_p50_ms", statistics.median(cpu))
        report.figure("digest_cpu_p99_ms", cpu[int(len(cpu) * 0.99) - 1])
        report.figure("digest_all_10k_s", total)
        report.figure("digest_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        db.dispose()


def _pending(db: Database) -> bool:
    with db.engine.connect() as conn:
        return conn.execute(select(DigestDelivery.id).where(DigestDelivery.status.in_(("pending", "sending"))).limit(1)).first() is not None
