"""A worker process for the kill -9 tests: drains the inbox of the database it is given,
doing real work per delivery (one row in `kill_work`, in the transaction that marks the
delivery done), slowly enough to be killed in the middle.

Usage: python -m tests.inbox_worker_proc DATABASE_URL SECONDS_PER_EVENT"""
from __future__ import annotations

import sys
import time

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.clock import SystemClock
from bot.inbox import InboxWorker
from store.db import ALL_TENANTS, Database
from store.inbox import Claimed


def main() -> int:
    url, pause = sys.argv[1], float(sys.argv[2])
    db = Database(url)

    def work(row: Claimed, finish) -> None:  # type: ignore[no-untyped-def]
        with db.session(ALL_TENANTS) as session:
            session.execute(text("INSERT INTO kill_work (inbox_id, payload) VALUES (:i, :p)"), {"i": row.id, "p": row.payload})
            time.sleep(pause)
            finish(session)

    worker = InboxWorker(db, SystemClock(), {"test": work}, threads=2, batch=4, poll_seconds=0.05)
    worker.start()
    print("ready", flush=True)
    time.sleep(120)  # killed long before this by the test
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
