"""Quality of "who knows X?" on the ESCO development set (bench/data/esco-expertise-dev/).

Every person of the set declares their skills through the real store code
(`store.expertise.add_skills`, dated `days_ago` before the benchmark's clock), then each query
is asked through the real lookup (`handlers.expertise.lookup.find_experts`, limit 5) as
someone who declared nothing, and scored as the set's README says: recall@5 and MRR per
category and over a–g ("all"), the no-result rate, and the false-positive rate (queries about
skills nobody has answered with somebody). Topic suggestions are not results.

The set is a benchmark only (CC BY 4.0, © European Union, see its NOTICE.md): nothing of it is
shipped as aliases or skills, and the lookup is not tuned on its labels.

BENCH_MEANING=0 runs the spelling tiers only (the lookup as it was before the meaning tier);
BENCH_QUALITY_DETAIL=1 prints, per category, the queries that found no relevant person.
Database: a temporary SQLite file, or BENCH_DATABASE_URL (an empty, disposable database).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from bench.org import NOW
from bot.clock import FixedClock
from bot.config import Settings
from bot.context import Ctx, Services
from bot.i18n import Prompts
from bot.registry import Registry
from handlers.expertise.lookup import ExpertiseCache, fill_vectors, find_experts, index_for
from store import expertise as xstore
from store.db import Database
from store.models.core import Person, Workspace

DATA = Path(__file__).resolve().parent / "data" / "esco-expertise-dev"
TENANT = "bench:quality"
CATEGORIES = {"a_exact": "exact", "b_typo": "typo", "c_crosslang": "crosslang", "d_synonym": "synonym",
              "e_abbrev": "abbrev", "f_order_accent": "order_accent", "g_mixed": "mixed"}


def load(name: str) -> list[dict]:  # type: ignore[type-arg]
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def declare(db: Database, people: list[dict]) -> None:  # type: ignore[type-arg]
    with db.engine.begin() as conn:
        conn.execute(insert(Workspace.__table__), [{"id": TENANT, "platform": "bench", "name": "quality",
                                                    "default_locale": "en", "expertise_version": 0, "created_at": NOW}])
        rows = [{"tenant": TENANT, "external_id": p["handle"], "handle": p["handle"], "display_name": p["handle"],
                 "is_bot": False, "active": True, "accepts_mentions": True, "created_at": NOW, "updated_at": NOW}
                for p in people]
        rows.append({"tenant": TENANT, "external_id": "asker", "handle": "asker", "display_name": "asker",
                     "is_bot": False, "active": True, "accepts_mentions": True, "created_at": NOW, "updated_at": NOW})
        conn.execute(insert(Person.__table__), rows)
    with db.session(TENANT) as session:
        by_handle = {p.handle: p for p in session.scalars(select(Person))}
        for p in people:
            person = by_handle[p["handle"]]
            for skill in p["skills"]:
                when = NOW - timedelta(days=int(skill.get("days_ago", 0)))
                xstore.add_skills(session, TENANT, person, [skill["label"]], when)


def score(lookup, queries: list[dict]) -> tuple[dict[str, dict[str, float]], list[tuple[str, dict]]]:  # type: ignore[type-arg]
    s: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "recall@5": 0.0, "mrr": 0.0, "no_result": 0.0})
    misses: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    for q in queries:
        top, rel = lookup(q["query"])[:5], set(q["relevant"])
        for key in (q["category"], "all") if rel else (q["category"],):
            s[key]["n"] += 1
            s[key]["no_result"] += not top
            if rel:
                s[key]["recall@5"] += len(rel & set(top)) / min(5, len(rel))
                s[key]["mrr"] += next((1 / k for k, h in enumerate(top, 1) if h in rel), 0.0)
        if (rel and not rel & set(top)) or (not rel and top):
            misses.append((q["category"], {**q, "top": top}))
    return s, misses


def run(report) -> None:  # noqa: ANN001 - bench.__main__.Report
    people, queries = load("people.jsonl"), load("queries.jsonl")
    use_meaning = os.environ.get("BENCH_MEANING", "1") != "0"
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/quality.db"
        db = Database(url)
        db.upgrade()
        started = time.perf_counter()
        declare(db, people)
        report.figure("quality_declare_s", time.perf_counter() - started)
        settings = Settings(database_url=url, default_locale="en")
        services = Services(settings=settings, db=db, prompts=Prompts.load(), clock=FixedClock(NOW), registry=Registry())
        cache = ExpertiseCache.for_files(settings.aliases_file)
        cache.use_meaning = use_meaning
        services.extras["expertise"] = cache
        model = cache.model()
        if model is not None:  # what the expertise.vectors job does for topics declared without the bot
            started = time.perf_counter()
            fill_vectors(db, TENANT, model)
            report.figure("quality_topic_vectors_cold_s", time.perf_counter() - started)
        with db.session(TENANT) as session:
            workspace = session.get(Workspace, TENANT)
            asker = session.scalar(select(Person).where(Person.handle == "asker"))
            ctx = Ctx.for_person(services, session, workspace, asker)  # type: ignore[arg-type]
            started = time.perf_counter()
            index = index_for(ctx)
            report.figure("quality_meaning", "on" if use_meaning and index.vectors is not None else "off")
            report.figure("quality_index_build_s", time.perf_counter() - started)
            report.figure("quality_topics", len(index.topics))
            handles = {p.id: p.handle for p in session.scalars(select(Person))}

            def lookup(text: str) -> list[str]:
                return [handles[c.person.id] for c in find_experts(ctx, text, limit=5).candidates]

            started = time.perf_counter()
            s, misses = score(lookup, queries)
            report.figure("quality_lookup_mean_ms", (time.perf_counter() - started) * 1000 / len(queries))
        db.dispose()
    for category, name in CATEGORIES.items():
        v = s[category]
        report.figure(f"quality_recall5_{name}", v["recall@5"] / v["n"])
        report.figure(f"quality_mrr_{name}", v["mrr"] / v["n"])
    report.figure("quality_recall5_all", s["all"]["recall@5"] / s["all"]["n"])
    report.figure("quality_mrr_all", s["all"]["mrr"] / s["all"]["n"])
    report.figure("quality_no_result_all", s["all"]["no_result"] / s["all"]["n"])
    unknown = s["h_unknown"]
    report.figure("quality_false_positive_rate", 1 - unknown["no_result"] / unknown["n"])
    if os.environ.get("BENCH_QUALITY_DETAIL"):
        for category, q in misses:
            print(f"  miss {category} [{q['lang']}] {q['query']!r} declared as {q['declared_as'][:3]} -> {q['top'][:3]}")
