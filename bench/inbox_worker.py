"""One inbox worker process for bench_inbox: the Slack adapter's processor over a database
whose inbox was filled beforehand. Prints "ready" once warm, starts on a line from stdin,
stops on another line (or when its stdin closes) and then prints one line of what its
drain cost: `cost <cpu seconds> <statements> <commits> <checkouts>` (its own CPU, user and
system, since "go"; statements sent through SQLAlchemy or store/cursor_sql.py, BEGIN and
COMMIT not included; commits; pool checkouts, each of which pings PostgreSQL).

Usage: python -m bench.inbox_worker DATABASE_URL THREADS"""
from __future__ import annotations

import os
import sys

from sqlalchemy import event

from adapters.slack.adapter import SlackAdapter
from adapters.slack.client import SingleToken
from bot.clock import SystemClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from bot.inbox import InboxWorker
from handlers import build_registry
from store import cursor_sql
from store.db import Database


def main() -> int:
    url, threads = sys.argv[1], int(sys.argv[2])
    # Nothing here may reach Slack: people and channels exist and the events state their channel type.
    settings = Settings(database_url=url, slack_bot_token="xoxb-bench", slack_api_url="http://127.0.0.1:9/api/")
    db = Database(url)
    services = Services(settings=settings, db=db, prompts=Prompts.load(), clock=SystemClock(), registry=build_registry())
    adapter = SlackAdapter(Bot(services), SingleToken("xoxb-bench"), settings.slack_api_url)
    worker = InboxWorker(db, services.clock, {"slack": adapter.process_row}, threads=threads, poll_seconds=0.05)
    counts = {"statements": 0, "commits": 0, "checkouts": 0}

    def count(name: str):  # noqa: ANN202
        def bump(*_args: object, **_kw: object) -> None:
            counts[name] += 1
        return bump

    event.listen(db.engine, "before_cursor_execute", count("statements"))
    event.listen(db.engine, "commit", count("commits"))
    event.listen(db.engine.pool, "checkout", count("checkouts"))
    print("ready", flush=True)
    sys.stdin.readline()
    started, direct = os.times(), cursor_sql.executed
    for name in counts:
        counts[name] = 0
    worker.start()
    sys.stdin.readline()
    worker.stop()
    ended = os.times()
    cpu = (ended.user - started.user) + (ended.system - started.system)
    print(f"cost {cpu:.4f} {counts['statements'] + cursor_sql.executed - direct} {counts['commits']} {counts['checkouts']}",
          flush=True)
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
