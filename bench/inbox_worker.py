"""One inbox worker process for bench_inbox: the Slack adapter's processor over a database
whose inbox was filled beforehand. Prints "ready" once warm, starts on a line from stdin,
exits when told (another line) or when its stdin closes.

Usage: python -m bench.inbox_worker DATABASE_URL THREADS"""
from __future__ import annotations

import sys

from adapters.slack.adapter import SlackAdapter
from adapters.slack.client import SingleToken
from bot.clock import SystemClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from bot.inbox import InboxWorker
from handlers import build_registry
from store.db import Database


def main() -> int:
    url, threads = sys.argv[1], int(sys.argv[2])
    # Nothing here may reach Slack: people and channels exist and the events state their channel type.
    settings = Settings(database_url=url, slack_bot_token="xoxb-bench", slack_api_url="http://127.0.0.1:9/api/")
    db = Database(url)
    services = Services(settings=settings, db=db, prompts=Prompts.load(), clock=SystemClock(), registry=build_registry())
    adapter = SlackAdapter(Bot(services), SingleToken("xoxb-bench"), settings.slack_api_url)
    worker = InboxWorker(db, services.clock, {"slack": adapter.process_row}, threads=threads, poll_seconds=0.05)
    print("ready", flush=True)
    sys.stdin.readline()
    worker.start()
    sys.stdin.readline()
    worker.stop()
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
