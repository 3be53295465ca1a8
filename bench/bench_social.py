"""Ambient ingestion and the news feed at scale.

1. Ingestion throughput (parse + index + commit) in messages/s, in backfill batches through
   `store.social.ingest` (one transaction per batch of BATCH messages), on SQLite (temporary
   file) and PostgreSQL (BENCH_PG_URL, default database `test_social_bench` on the local
   server, wiped first; skipped with the reason when unreachable). In the same run, a raw
   SQLAlchemy Core bulk insert of exactly the rows ingestion writes (messages, topics links,
   mentions, evidence), pre-computed, with the same batches and commits: `ingest_vs_raw_insert`
   is ingestion's rate divided by that raw rate. The live path (one event, one transaction,
   through `Bot.handle`) is measured too.
2. Feed query p99 over 10 × BENCH_PEOPLE indexed messages (1,000,000 for the default
   100,000 people), bulk-loaded with Core inserts; 1,000 feeds of random readers who follow
   20 people and 5 topics each.
"""
from __future__ import annotations

import contextlib
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from bot.clock import FixedClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from bot.text import extract_hashtags, mention_marker, norm_key, sanitize, topic_key
from bot.types import ConversationRef, IncomingMessage, UserRef
from handlers import build_registry
from handlers.social_index import THANKS
from store import social
from store.db import Database, unreachable
from store.models.core import Conversation, ConversationMember, Evidence, Person, Workspace
from store.models.social import Follow, Message, MessageMention, MessageTopic, Topic

TENANT = "bench:social"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
N_INGEST = 20000
N_LIVE = 500
BATCH = 200
N_PEOPLE_INGEST = 2000
N_CHANNELS = 40
N_TOPICS = 1000
N_FEEDS = 1000
CHUNK = 20000
WORDS = ("deal", "release", "review", "budget", "client", "roadmap", "incident", "merci", "question", "update",
         "planning", "demo", "customer", "contrat", "réunion", "migration", "cluster", "campagne", "offre", "prix")


def _text(rng: random.Random, topics: list[str], n_people: int) -> tuple[str, list[int]]:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    mentions: list[int] = []
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        pid = rng.randrange(n_people)
        mentions.append(pid)
        words.insert(rng.randrange(len(words) + 1), mention_marker(f"U{pid}"))
    for _ in range(rng.choice((0, 1, 1, 2))):
        words.insert(rng.randrange(len(words) + 1), "#" + topics[min(int(rng.paretovariate(1.2)) - 1, len(topics) - 1)])
    return " ".join(words), mentions


def _setup(db: Database, n_people: int, n_channels: int) -> tuple[list[int], list[int]]:
    """Workspace, people and channels with Core inserts; returns (person ids, conversation ids)."""
    with db.engine.begin() as conn:
        conn.execute(insert(Workspace), [{"id": TENANT, "platform": "console", "name": "bench", "default_locale": "en",
                                          "expertise_version": 0, "created_at": NOW}])
        for start in range(0, n_people, CHUNK):
            conn.execute(insert(Person), [
                {"tenant": TENANT, "external_id": f"U{i}", "handle": f"user{i}", "display_name": f"User {i}", "email": "",
                 "title": "", "department": "", "site": "", "tz": "Europe/Paris", "languages": "", "locale": "en",
                 "avatar_url": "", "is_bot": False, "active": True, "accepts_mentions": True, "created_at": NOW,
                 "updated_at": NOW}
                for i in range(start, min(n_people, start + CHUNK))])
        conn.execute(insert(Conversation), [
            {"tenant": TENANT, "external_id": f"C{i}", "name": f"channel-{i}", "kind": "private" if i % 10 == 9 else "public",
             "language": "en", "tz": "", "bot_member": True, "indexing": True, "member_count": 0, "created_at": NOW}
            for i in range(n_channels)])
        people = [r[0] for r in conn.execute(select(Person.id).where(Person.tenant == TENANT).order_by(Person.id))]
        convs = [r[0] for r in conn.execute(select(Conversation.id).where(Conversation.tenant == TENANT).order_by(Conversation.id))]
    return people, convs


def _fresh(url: str) -> Database:
    db = Database(url)
    db.drop_everything()
    db.upgrade()
    return db


def _messages(rng: random.Random, n: int, n_convs: int, n_people: int) -> list[tuple[int, int, str, list[int]]]:
    topics = [f"topic{i}" for i in range(N_TOPICS)]
    out = []
    for _ in range(n):
        body, mentions = _text(rng, topics, n_people)
        out.append((rng.randrange(n_convs), rng.randrange(n_people), body, mentions))
    return out


def _ingest(db: Database, people: list[int], convs: list[int], msgs: list[tuple[int, int, str, list[int]]]) -> float:
    """Parse + index + commit, in backfill batches. Returns messages per second."""
    started = time.perf_counter()
    for start in range(0, len(msgs), BATCH):
        with db.session(TENANT) as session:
            posts = []
            for i, (c, a, raw, mentions) in enumerate(msgs[start:start + BATCH], start):
                body = sanitize(raw)
                tags = extract_hashtags(body)
                ids = tuple(people[m] for m in mentions)
                posts.append(social.Post(
                    conversation_id=convs[c], external_id=f"m{i}", author_id=people[a], text=body,
                    sent_at=NOW - timedelta(seconds=len(msgs) - i), permalink=f"bench://{c}/{i}", hashtags=tags,
                    mention_ids=ids, thanked=bool(ids) and THANKS.search(norm_key(body)) is not None))
            social.ingest(session, TENANT, posts, NOW)
    return len(msgs) / (time.perf_counter() - started)


def _raw_rows(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, list[dict[str, Any]]]]]:
    """Exactly the rows ingestion wrote (topics, then per batch: messages, topic links,
    mentions, evidence), read back from its database, ready to insert elsewhere."""
    def rows(conn: Any, model: type, order: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(select(model.__table__).order_by(order))]  # type: ignore[attr-defined]

    with db.engine.connect() as conn:
        topics = rows(conn, Topic, Topic.id)
        messages = rows(conn, Message, Message.id)
        links = rows(conn, MessageTopic, MessageTopic.id)
        mentions = rows(conn, MessageMention, MessageMention.id)
        evidence = rows(conn, Evidence, Evidence.id)
    batch_of = {m["id"]: int(m["external_id"][1:]) // BATCH for m in messages}
    batches: list[dict[str, list[dict[str, Any]]]] = [
        {"messages": [], "topics": [], "mentions": [], "evidence": []} for _ in range(max(batch_of.values()) + 1)]
    for m in messages:
        batches[batch_of[m["id"]]]["messages"].append(m)
    for r in links:
        batches[batch_of[r["message_id"]]]["topics"].append(r)
    for r in mentions:
        batches[batch_of[r["message_id"]]]["mentions"].append(r)
    for r in evidence:
        batches[int(r["source_ref"].rsplit(":m", 1)[1]) // BATCH]["evidence"].append(r)
    return topics, batches


def _raw_insert(db: Database, batches: list[dict[str, list[dict[str, Any]]]]) -> float:
    n = sum(len(b["messages"]) for b in batches)
    started = time.perf_counter()
    for b in batches:
        with db.engine.begin() as conn:
            conn.execute(insert(Message), b["messages"])
            if b["topics"]:
                conn.execute(insert(MessageTopic), b["topics"])
            if b["mentions"]:
                conn.execute(insert(MessageMention), b["mentions"])
            if b["evidence"]:
                conn.execute(insert(Evidence), b["evidence"])
    return n / (time.perf_counter() - started)


def _live(url: str, msgs: list[tuple[int, int, str, list[int]]]) -> float:
    """One message, one transaction, through the whole bot (hooks, dedup, commit)."""
    clock = FixedClock(NOW)
    settings = Settings(database_url=url, admins=[])
    db = Database(url)
    bot = Bot(Services(settings=settings, db=db, prompts=Prompts.load(), clock=clock, registry=build_registry()))
    started = time.perf_counter()
    for i, (c, a, raw, mentions) in enumerate(msgs):
        conv = ConversationRef("console", TENANT, f"C{c}", "private" if c % 10 == 9 else "public", name=f"channel-{c}")
        bot.handle(IncomingMessage(id=f"live{i}", text=raw, sender=UserRef("console", TENANT, f"U{a}", f"User {a}"),
                                   conversation=conv, addressed=False, sent_at=NOW,
                                   mentions=tuple(UserRef("console", TENANT, f"U{m}") for m in mentions)))
    rate = len(msgs) / (time.perf_counter() - started)
    db.dispose()
    return rate


def _ingestion(report: Any, url: str, raw_url: str, label: str) -> None:
    rng = random.Random(7)
    db = _fresh(url)
    people, convs = _setup(db, N_PEOPLE_INGEST, N_CHANNELS)
    msgs = _messages(rng, N_INGEST, len(convs), len(people))
    rate = _ingest(db, people, convs, msgs)
    topics, batches = _raw_rows(db)
    written = sum(len(rows) for b in batches for rows in b.values())
    db.dispose()
    raw_db = _fresh(raw_url)
    assert _setup(raw_db, N_PEOPLE_INGEST, N_CHANNELS) == (people, convs)
    with raw_db.engine.begin() as conn:
        conn.execute(insert(Topic), topics)
    raw = _raw_insert(raw_db, batches)
    raw_db.dispose()
    live = _live(url, msgs[:N_LIVE])
    report.figure(f"ingest_msgs_per_s_{label}", round(rate, 1))
    report.figure(f"raw_insert_msgs_per_s_{label}", round(raw, 1))
    report.figure(f"ingest_vs_raw_insert_{label}", round(rate / raw, 3))
    report.figure(f"ingest_live_msgs_per_s_{label}", round(live, 1))
    print(f"# {label}: {N_INGEST} messages in batches of {BATCH} ({written} rows); live path: {N_LIVE} messages",
          flush=True)
    if label == "sqlite":
        report.figure("ingest_vs_raw_insert", round(rate / raw, 3))


def _feed(report: Any, url: str, n_people: int) -> None:
    """Bulk-load 10 messages per person, then time 1,000 feeds."""
    rng = random.Random(11)
    n_msgs = n_people * 10
    n_channels = max(20, n_people // 500)
    db = _fresh(url)
    people, convs = _setup(db, n_people, n_channels)
    loaded = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(insert(Topic), [{"tenant": TENANT, "key": f"topic{i}", "label": f"topic{i}", "created_at": NOW}
                                     for i in range(N_TOPICS)])
        topic_ids = [r[0] for r in conn.execute(select(Topic.id).order_by(Topic.id))]
        private = [c for i, c in enumerate(convs) if i % 10 == 9]
        members = [{"tenant": TENANT, "conversation_id": c, "person_id": p, "joined_at": NOW}
                   for c in private for p in rng.sample(people, min(len(people), 500))]
        conn.execute(insert(ConversationMember), members)
    for start in range(0, n_msgs, CHUNK):
        m_rows, t_rows = [], []
        for i in range(start, min(n_msgs, start + CHUNK)):
            c = convs[rng.randrange(len(convs))]
            sent = NOW - timedelta(seconds=(n_msgs - i) * 15)
            m_rows.append({"id": i + 1, "tenant": TENANT, "conversation_id": c, "external_id": f"m{i}",
                           "author_id": people[rng.randrange(len(people))], "thread_external_id": None,
                           "text": f"message {i} about things", "permalink": f"bench://{c}/{i}", "sent_at": sent,
                           "edited_at": None, "reply_count": 0, "reaction_count": 0, "deleted": False})
            if rng.random() < 0.5:
                t = topic_ids[min(int(rng.paretovariate(1.2)) - 1, len(topic_ids) - 1)]
                t_rows.append({"tenant": TENANT, "message_id": i + 1, "topic_id": t, "sent_at": sent, "conversation_id": c})
        with db.engine.begin() as conn:
            conn.execute(insert(Message), m_rows)
            conn.execute(insert(MessageTopic), t_rows)
    readers = rng.sample(people, 200)
    with db.engine.begin() as conn:
        rows = []
        for r in readers:
            for p in rng.sample(people, 20):
                if p != r:
                    rows.append({"tenant": TENANT, "follower_id": r, "target_key": f"p:{p}", "person_id": p,
                                 "topic_id": None, "level": "follow", "created_at": NOW})
            for t in rng.sample(topic_ids[:50], 5):
                rows.append({"tenant": TENANT, "follower_id": r, "target_key": f"t:{t}", "person_id": None,
                             "topic_id": t, "level": "follow", "created_at": NOW})
        conn.execute(insert(Follow), rows)
        conn.execute(text("ANALYZE"))
    print(f"# feed: loaded {n_msgs} messages, {n_people} people in {time.perf_counter() - loaded:.1f} s", flush=True)
    timings = []
    with db.session(TENANT) as session:
        viewers = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(readers)))}
        for i in range(N_FEEDS):
            viewer = viewers[readers[i % len(readers)]]
            started = time.perf_counter()
            items, _ = social.feed(session, viewer, page=1 + (i % 3 == 2), size=5)
            timings.append((time.perf_counter() - started) * 1000)
            assert items
    db.dispose()
    timings.sort()
    report.figure("feed_p50_ms", round(statistics.median(timings), 2))
    report.figure("feed_p99_ms", round(timings[int(len(timings) * 0.99) - 1], 2))


def _create_database(url: str) -> None:
    """Create the benchmark's own database on the server when it is missing (a fresh machine)."""
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = target.database or ""
    if not name.replace("_", "").isalnum():
        return
    admin = Database(target.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def _pg_problem(url: str) -> str | None:
    with contextlib.suppress(Exception):
        _create_database(url)  # a server that is down is reported by unreachable() below
    return unreachable(url)


def run(report: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        _ingestion(report, f"sqlite:///{base / 'ingest.db'}", f"sqlite:///{base / 'raw.db'}", "sqlite")
        pg = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test_social_bench")
        problem = _pg_problem(pg)
        if problem:
            print(f"# ingest_msgs_per_s_pg skipped: PostgreSQL unreachable at {pg} ({problem})", flush=True)
        else:
            raw_pg = os.environ.get("BENCH_PG_RAW_URL", pg + "_raw")
            if _pg_problem(raw_pg):
                raw_pg = pg  # one database only: the raw run follows on a wiped schema
            _ingestion(report, pg, raw_pg, "pg")
        _feed(report, f"sqlite:///{base / 'feed.db'}", report.people())
