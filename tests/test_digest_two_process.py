"""Two real worker processes on one PostgreSQL database post each digest once."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.context import Services
from store.models.core import Conversation
from store.models.digests import DigestDelivery, DigestRun
from tests.digest_worker import TENANT, add_digest, add_message, seed_org

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = 40


@pytest.mark.postgresql_only
def test_two_workers_post_each_digest_once(services: Services, db_url: str) -> None:
    db = services.db
    org = seed_org(db)
    now = services.clock.now()
    with db.session(TENANT) as s:
        for i in range(CHANNELS):
            conv = Conversation(external_id=f"team-{i}", name=f"team-{i}", kind="public", language="en", tz="Europe/Paris",
                                member_count=5)
            s.add(conv)
            s.flush()
            org.channels[f"team-{i}"] = conv.id
    for i in range(CHANNELS):
        add_digest(db, org, now, channel=f"team-{i}", frequency="daily", cron="0 11 * * *")
        add_message(db, org, f"team-{i}", "thomas", f"news {i}", now + timedelta(minutes=10), replies=i % 4)
    due = (now + timedelta(hours=1, minutes=1)).isoformat()  # 11:00 Paris is 10:00 UTC
    start_at = time.time() + 4.0
    workers = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "digest_worker.py"), db_url, due, "4", str(start_at)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        outputs.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    spans = [next(line for line in lines if "started" in line) for lines in outputs]
    assert max(s["started"] for s in spans) < min(s["ended"] for s in spans), "the workers did not run at the same time"
    anchors = [post["anchor"] for posts in outputs for post in posts if "anchor" in post]
    assert len(anchors) == CHANNELS and len(set(anchors)) == CHANNELS
    with db.session(TENANT) as s:
        assert s.scalar(select(func.count(DigestRun.id))) == CHANNELS
        assert s.scalar(select(func.count(DigestDelivery.id)).where(DigestDelivery.status == "sent")) == CHANNELS
