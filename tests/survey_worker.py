"""Survey test support: a worker process for the two-process test (tests/test_survey_two_process.py).

`python tests/survey_worker.py <database url> <iso time> <ticks> <start at, unix time>` builds
the real services on the database with a fixed clock, waits for the start instant (so two
workers begin together), runs the `surveys.send` job then the outbox sweeper `ticks` times
and prints every DM it delivered as one JSON line `{"to": ..., "key": ...}` (10 ms a send,
like a network call)."""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: Sequence[str]) -> int:
    from bot.clock import FixedClock
    from bot.config import Settings
    from bot.context import Services
    from bot.core import Bot
    from bot.i18n import Prompts
    from bot.types import Outbound
    from handlers import build_registry
    from store.db import Database

    url, when, ticks, start_at = argv[0], datetime.fromisoformat(argv[1]), int(argv[2]), float(argv[3])
    settings = Settings(database_url=url, admins=["camille"], default_locale="en")
    clock = FixedClock(when)
    services = Services(settings=settings, db=Database(url), prompts=Prompts.load(), clock=clock, registry=build_registry())

    def deliver(effects: Sequence[object]) -> None:
        for effect in effects:
            time.sleep(0.01)
            if isinstance(effect, Outbound):
                print(json.dumps({"to": effect.to.id, "key": effect.reply.key}), flush=True)

    services.deliver = deliver
    bot = Bot(services)
    jobs = [next(j for j in services.registry.jobs if j.name == name) for name in ("surveys.send", "outbox.send")]
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    for _ in range(ticks):
        for job in jobs:
            bot.run_job(job)
        clock.advance(timedelta(seconds=31))
    print(json.dumps({"started": started, "ended": time.time()}), flush=True)
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
