"""A digest delivery process for tests/test_digest_delivery_faults.py.

`python tests/digest_fault_worker.py <database url> <iso time> <slack api url>` builds the real
services on the database with a fixed clock and the real Slack sender against the mock, then
sends what is queued once (`engine.deliver_pending`) and prints "done". The test kills it
(SIGKILL) while the mock holds its answer to chat.postMessage.
"""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str]) -> int:
    from adapters.slack.client import Clients, Pacer, SingleToken
    from adapters.slack.sender import SlackSender
    from bot.clock import FixedClock
    from bot.config import Settings
    from bot.context import Services
    from handlers.digests import engine
    from bot.i18n import Prompts
    from handlers import build_registry
    from store.db import Database

    url, when, api = argv[0], datetime.fromisoformat(argv[1]), argv[2]
    settings = Settings(database_url=url, admins=["camille"], default_locale="en")
    services = Services(settings=settings, db=Database(url), prompts=Prompts.load(), clock=FixedClock(when),
                        registry=build_registry())
    sender = SlackSender(services, SingleToken("xoxb-test-token"), Clients(api), Pacer(0.0), lambda event: [])
    services.deliver = sender.deliver
    print("ready", flush=True)
    engine.deliver_pending(services, when)
    print("done", flush=True)
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
