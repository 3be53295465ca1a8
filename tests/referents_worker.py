"""A worker process for the suggestions' escalation test.

`python tests/referents_worker.py <database url> <iso time> <start at, unix time>` builds the
real services on the given database with a fixed clock, waits for the start instant (so two
workers begin together) and runs the `suggestions.escalate` job three times. Each escalation
it wins takes 20 ms more (as a slow notification would), so the two workers overlap; it
prints one JSON line per escalation it made, then when it started and ended.
"""
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
    from handlers import build_registry
    from store import suggestions as store
    from store.db import Database

    url, when, start_at = argv[0], datetime.fromisoformat(argv[1]), float(argv[2])
    settings = Settings(database_url=url, admins=["camille"], default_locale="en")
    clock = FixedClock(when)
    services = Services(settings=settings, db=Database(url), prompts=Prompts.load(), clock=clock, registry=build_registry())
    claim = store.claim_escalation

    def slow_claim(session, suggestion_id, now):  # type: ignore[no-untyped-def]
        won = claim(session, suggestion_id, now)
        if won:
            print(json.dumps({"thread": suggestion_id}), flush=True)
            time.sleep(0.02)
        return won

    store.claim_escalation = slow_claim  # type: ignore[assignment]
    bot = Bot(services)
    job = next(j for j in services.registry.jobs if j.name == "suggestions.escalate")
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    for _ in range(3):
        bot.run_job(job)
        clock.advance(timedelta(seconds=1))
    print(json.dumps({"started": started, "ended": time.time()}), flush=True)
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
