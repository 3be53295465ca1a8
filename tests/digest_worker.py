"""Digest test support: a tiny organisation to seed, and a worker process entry point.

`python tests/digest_worker.py <database url> <iso time> <ticks> [<start at, unix time>]` builds
the real services on the given database with a fixed clock, waits for the start instant (so
two workers begin together), runs the digest job `ticks` times and prints every post it
delivered as one JSON line `{"anchor": ..., "to": ...}`. Posting takes 10 ms, like a network
call. The two-process test starts two of these at once on one PostgreSQL database.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence
from zoneinfo import ZoneInfo

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.digests.content import Sources
from handlers.digests.cron import Cron, next_after
from store.db import Database
from store.models.core import Conversation, ConversationMember, Person, PersonSkill, Role, Skill, Workspace
from store.models.digests import Digest
from store.models.social import Message

TENANT = "console:digests"
LONG_AGO = datetime(2025, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Org:
    people: dict[str, int]
    channels: dict[str, int]


def seed_org(db: Database, tenant: str = TENANT, platform: str = "console") -> Org:
    """julien animates #sales (French, Paris); camille is admin; #direction is private."""
    with db.session(tenant) as s:
        s.add(Workspace(id=tenant, platform=platform, default_locale="en", name="digests"))
        people: dict[str, Person] = {}
        for handle, name, tz, locale in (
            ("julien", "Julien Richard", "Europe/Paris", "fr"), ("camille", "Camille Bernard", "Europe/Paris", "fr"),
            ("thomas", "Thomas Robert", "Europe/Paris", "en"), ("sophie", "Sophie Martin", "Europe/Paris", "fr"),
            ("lucas", "Lucas Petit", "America/Montreal", "en"), ("emma", "Emma Durand", "Europe/London", "en"),
        ):
            people[handle] = Person(external_id=handle, handle=handle, display_name=name, tz=tz, locale=locale,
                                    created_at=LONG_AGO, updated_at=LONG_AGO)
            s.add(people[handle])
        s.flush()
        channels: dict[str, Conversation] = {}
        for name, kind, lang in (("sales", "public", "fr"), ("engineering", "public", "en"), ("direction", "private", "fr")):
            channels[name] = Conversation(external_id=name, name=name, kind=kind, language=lang, tz="Europe/Paris",
                                          created_at=LONG_AGO, member_count=10 if kind == "public" else 2)
            s.add(channels[name])
        s.flush()
        members = {"sales": ["julien", "sophie", "thomas", "camille"], "engineering": ["thomas", "lucas", "emma"],
                   "direction": ["camille", "sophie"]}
        for channel, handles in members.items():
            for handle in handles:
                s.add(ConversationMember(conversation_id=channels[channel].id, person_id=people[handle].id, joined_at=LONG_AGO))
        s.add(Role(person_id=people["julien"].id, role="animator", conversation_id=channels["sales"].id, created_at=LONG_AGO))
        skill = Skill(name="négociation", key="negociation")
        s.add(skill)
        s.flush()
        s.add(PersonSkill(person_id=people["emma"].id, skill_id=skill.id, created_at=LONG_AGO, confirmed_at=LONG_AGO))
        return Org({h: p.id for h, p in people.items()}, {n: c.id for n, c in channels.items()})


def add_message(db: Database, org: Org, channel: str, author: str, text: str, sent_at: datetime, *,
                replies: int = 0, reactions: int = 0, tenant: str = TENANT) -> int:
    with db.session(tenant) as s:
        ext = f"{channel}-{sent_at.timestamp():.0f}-{author}-{abs(hash(text)) % 10**6}"
        row = Message(conversation_id=org.channels[channel], external_id=ext, author_id=org.people[author], text=text,
                      permalink=f"console://{channel}/{ext}", sent_at=sent_at, reply_count=replies, reaction_count=reactions)
        s.add(row)
        s.flush()
        return row.id


def add_digest(db: Database, org: Org, now: datetime, *, channel: str | None = "sales", person: str | None = None,
               frequency: str = "weekly", cron: str = "0 9 * * 1", tz: str = "Europe/Paris",
               sources: Sources = Sources(), tenant: str = TENANT) -> int:
    with db.session(tenant) as s:
        digest = Digest(kind="channel" if person is None else "personal",
                        conversation_id=org.channels[channel] if person is None and channel else None,
                        person_id=org.people[person] if person else None, frequency=frequency, cron=cron, tz=tz,
                        sources=sources.dumps(), status="active", created_at=now, updated_at=now,
                        next_run_at=next_after(Cron.parse(cron), now, ZoneInfo(tz)))
        s.add(digest)
        s.flush()
        return digest.id


def main(argv: Sequence[str]) -> int:
    from bot.clock import FixedClock
    from bot.config import Settings
    from bot.context import Services
    from bot.core import Bot
    from bot.i18n import Prompts
    from bot.types import Outbound
    from handlers import build_registry

    url, when, ticks = argv[0], datetime.fromisoformat(argv[1]), int(argv[2])
    settings = Settings(database_url=url, admins=["camille"], default_locale="en")
    clock = FixedClock(when)
    services = Services(settings=settings, db=Database(url), prompts=Prompts.load(), clock=clock, registry=build_registry())

    def deliver(effects: Sequence[object]) -> None:
        time.sleep(0.01)
        for effect in effects:
            if isinstance(effect, Outbound):
                print(json.dumps({"anchor": effect.anchor, "to": effect.to.id, "key": effect.reply.key}), flush=True)

    services.deliver = deliver
    bot = Bot(services)
    job = next(j for j in services.registry.jobs if j.name == "digests")
    if len(argv) > 3:
        time.sleep(max(0.0, float(argv[3]) - time.time()))
    started = time.time()
    for _ in range(ticks):
        bot.run_job(job)
        clock.advance(timedelta(seconds=1))
    print(json.dumps({"started": started, "ended": time.time()}), flush=True)
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
