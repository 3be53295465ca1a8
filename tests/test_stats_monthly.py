"""The monthly référent report (handlers/stats/monthly.py): once per référent and month, at
09:00 local on the month's first working day, in the référent's language, naming a private
channel only to its own référents.

August 2026 starts on a Saturday: the July report is due on Monday 3 August at 09:00 — 07:00
UTC for a référent in Paris, 13:00 UTC for one in Montréal.

Run as a script (`python tests/test_stats_monthly.py <database url> <iso time> <ticks>
<start at>`), this file is the worker process of the two-process test: it runs the report job
and the outbox job `ticks` times and prints every DM it delivered as a JSON line.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

if __name__ == "__main__":  # run as a worker: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bot.types import Outbound
from store.db import Database
from store.models.contribution import HelpRequest
from store.models.core import Conversation, ConversationMember, Person, ProcessedEvent, Role, Workspace
from store.models.social import Message

ROOT = Path(__file__).resolve().parent.parent
TENANT = "console:monthly"
LONG_AGO = datetime(2025, 1, 1, tzinfo=timezone.utc)
SAT_PARIS_9 = datetime(2026, 8, 1, 7, 0, tzinfo=timezone.utc)
MON_PARIS_9 = datetime(2026, 8, 3, 7, 0, tzinfo=timezone.utc)
MON_MONTREAL_9 = datetime(2026, 8, 3, 13, 0, tzinfo=timezone.utc)


def seed(db: Database, extra_referents: int = 0) -> dict[str, int]:
    """sophie: référent of the Sales department (French, Paris); julien: référent of #support
    (English, Montréal); nina: référent of #empty, where nothing ever happened; #direction is
    private, Sales people write there a lot; six of the twelve Sales people write in #sales, more in July
    than in June; a question in #support has waited since 20 July."""
    ids: dict[str, int] = {}
    with db.session(TENANT) as s:
        s.add(Workspace(id=TENANT, platform="console", default_locale="en", name="monthly"))
        people: dict[str, Person] = {}
        cast = [("sophie", "Sophie Martin", "Europe/Paris", "fr", "Sales"), ("julien", "Julien Richard", "America/Montreal", "en", "Support"),
                ("nina", "Nina Roux", "Europe/Paris", "en", "HR"), ("camille", "Camille Bernard", "Europe/Paris", "fr", "HR")]
        cast += [(f"sales{i}", f"Vendeur {i}", "Europe/Paris", "fr", "Sales") for i in range(12)]
        cast += [(f"ref{i}", f"Référent {i}", "Europe/Paris", "fr" if i % 2 else "en", "HR") for i in range(extra_referents)]
        for handle, name, tz, locale, dept in cast:
            people[handle] = Person(external_id=handle, handle=handle, display_name=name, tz=tz, locale=locale, department=dept,
                                    created_at=LONG_AGO, updated_at=LONG_AGO)
            s.add(people[handle])
        s.flush()
        channels: dict[str, Conversation] = {}
        for name, kind in (("sales", "public"), ("support", "public"), ("direction", "private"), ("empty", "public"),
                           ("news", "public")):
            channels[name] = Conversation(external_id=name, name=name, kind=kind, language="en", tz="Europe/Paris",
                                          created_at=LONG_AGO, member_count=10)
            s.add(channels[name])
        s.flush()
        sales = [people[f"sales{i}"] for i in range(12)] + [people["sophie"]]
        members = {"sales": sales, "direction": sales, "news": sales,
                   "support": [people[h] for h in ("julien", "camille", "nina")] + sales[:4],
                   "empty": [people[h] for h in ("nina", "camille", "julien")] + sales[:3]}
        for channel, who in members.items():
            for person in who:
                s.add(ConversationMember(conversation_id=channels[channel].id, person_id=person.id, joined_at=LONG_AGO))
        s.add(Role(person_id=people["sophie"].id, role="referent", scope_kind="department", scope_value="Sales", created_at=LONG_AGO))
        s.add(Role(person_id=people["julien"].id, role="referent", conversation_id=channels["support"].id, created_at=LONG_AGO))
        s.add(Role(person_id=people["nina"].id, role="referent", conversation_id=channels["empty"].id, created_at=LONG_AGO))
        for i in range(extra_referents):
            s.add(Role(person_id=people[f"ref{i}"].id, role="referent", conversation_id=channels["sales"].id, created_at=LONG_AGO))
        serial = 0

        def post(channel: str, who: Person, at: datetime) -> None:
            nonlocal serial
            serial += 1
            s.add(Message(conversation_id=channels[channel].id, external_id=f"m{serial}", author_id=who.id, text=f"post {serial}",
                          sent_at=at))

        june, july = datetime(2026, 6, 8, 10, tzinfo=timezone.utc), datetime(2026, 7, 6, 10, tzinfo=timezone.utc)
        for i, person in enumerate(sales[:6]):
            for k in range(2):
                post("sales", person, june + timedelta(days=i, hours=k))
            for k in range(5):
                post("sales", person, july + timedelta(days=i, hours=k))
            for k in range(8):
                post("direction", person, july + timedelta(days=i + 1, hours=k))
        post("news", sales[0], june)  # news went quiet: 1 in June, 0 in July
        for k in range(3):
            post("support", people["julien"], july + timedelta(days=k))
        asker = people["sales0"]
        s.add(HelpRequest(source_key="h1", number=1, asker_id=asker.id, question="Who knows the Safran file?",
                          conversation_id=channels["support"].id, conversation_external_id="support", status="open",
                          created_at=datetime(2026, 7, 20, 9, tzinfo=timezone.utc)))
        s.flush()
        ids.update({f"person:{h}": p.id for h, p in people.items()})
        ids.update({f"channel:{n}": c.id for n, c in channels.items()})
    return ids


def _job(bot, name: str):  # noqa: ANN001, ANN202 - a Bot and its Job
    return next(j for j in bot.services.registry.jobs if j.name == name)


def _dms(effects: Sequence[object]) -> dict[str, Outbound]:
    return {e.to.id: e for e in effects if isinstance(e, Outbound) and e.reply.key.startswith("stats.monthly")}


def _all_text(out: Outbound) -> str:
    reply = out.reply
    parts = [reply.text]
    if reply.card is not None:
        parts += [reply.card.title, reply.card.body, reply.card.footer or ""]
        parts += [f"{title}\n{body}" for title, body in reply.card.sections]
    return "\n".join(parts)


def test_sent_at_nine_local_on_the_first_working_day_once(bot, services) -> None:
    seed(services.db)
    job = _job(bot, "stats.monthly")
    assert _dms(bot.run_job(job, SAT_PARIS_9)) == {}, "August starts on a Saturday: nothing on the 1st"
    assert _dms(bot.run_job(job, SAT_PARIS_9 + timedelta(days=1, hours=5))) == {}, "nor on Sunday"
    assert _dms(bot.run_job(job, MON_PARIS_9 - timedelta(minutes=1))) == {}, "08:59 in Paris: not yet"
    at_nine = _dms(bot.run_job(job, MON_PARIS_9))
    assert set(at_nine) == {"sophie", "nina"}, "09:00 in Paris: the two Paris référents, not Montréal's"
    assert _dms(bot.run_job(job, MON_PARIS_9 + timedelta(minutes=1))) == {}, "once"
    assert _dms(bot.run_job(job, MON_MONTREAL_9 - timedelta(minutes=1))) == {}
    assert set(_dms(bot.run_job(job, MON_MONTREAL_9))) == {"julien"}, "09:00 in Montréal"
    assert _dms(bot.run_job(job, MON_MONTREAL_9 + timedelta(hours=3))) == {}
    assert _dms(bot.run_job(job, datetime(2026, 9, 1, 6, 59, tzinfo=timezone.utc))) == {}
    assert set(_dms(bot.run_job(job, datetime(2026, 9, 1, 7, 0, tzinfo=timezone.utc)))) == {"sophie", "nina"}, \
        "September starts on a Tuesday: sent that day, the next month's report"
    with services.db.session(TENANT) as s:
        keys = set(s.scalars(select(ProcessedEvent.key).where(ProcessedEvent.key.like("stats.monthly:%"))))
    assert len(keys) == 5 and {k[-7:] for k in keys} == {"2026-08", "2026-09"}


def test_french_referent_reads_french_and_private_channels_stay_unnamed(bot, services) -> None:
    seed(services.db)
    dm = _dms(bot.run_job(_job(bot, "stats.monthly"), MON_PARIS_9))["sophie"]
    text = _all_text(dm)
    assert dm.reply.key == "stats.monthly.report"
    assert "Rapport mensuel — juillet 2026" in dm.reply.card.title
    assert "Votre rapport mensuel" in dm.reply.text and "Contributeurs" in text and "juin 2026" in text
    assert "Action suggérée" in text
    assert "#sales" in text, "the Sales people's public channel moved most"
    assert "direction" not in text.lower(), "a private channel is never named in a department report"
    assert "#news" in text, "the channel that went quiet is among the movers"
    assert dm.reply.picture is not None and dm.reply.picture.png.startswith(b"\x89PNG")


def test_channel_referent_gets_the_waiting_question_as_action_in_english(bot, services) -> None:
    seed(services.db)
    dm = _dms(bot.run_job(_job(bot, "stats.monthly"), MON_MONTREAL_9))["julien"]
    text = _all_text(dm)
    assert "Monthly report — July 2026" in dm.reply.card.title
    assert "#support: 1 question waited more than 2 days" in text
    assert "Suggested action" in text


def test_empty_scope_gets_one_friendly_line(bot, services) -> None:
    seed(services.db)
    dm = _dms(bot.run_job(_job(bot, "stats.monthly"), MON_PARIS_9))["nina"]
    assert dm.reply.key == "stats.monthly.empty"
    assert dm.reply.card is None and dm.reply.picture is None
    assert "#empty" in dm.reply.text and "nothing has happened" in dm.reply.text


def test_a_referent_without_time_zone_gets_it_at_nine_in_the_workspaces_zone(bot, services) -> None:
    ids = seed(services.db)
    with services.db.session(TENANT) as s:
        s.get(Person, ids["person:julien"]).tz = ""  # most of the workspace lives in Paris
    job = _job(bot, "stats.monthly")
    assert "julien" not in _dms(bot.run_job(job, MON_PARIS_9 - timedelta(minutes=1)))
    assert "julien" in _dms(bot.run_job(job, MON_PARIS_9))


def test_two_worker_processes_send_each_report_once(services, db_url: str) -> None:
    referents = 30
    seed(services.db, extra_referents=referents)
    start_at = time.time() + 4.0
    workers = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), db_url, MON_PARIS_9.isoformat(), "6", str(start_at)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err[-3000:]
        outputs.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    spans = [next(line for line in lines if "started" in line) for lines in outputs]
    assert max(s["started"] for s in spans) < min(s["ended"] for s in spans), "the workers did not run at the same time"
    sent = [d["to"] for lines in outputs for d in lines if "to" in d]
    expected = {"sophie", "nina"} | {f"ref{i}" for i in range(referents)}
    assert sorted(sent) == sorted(expected), "each Paris référent exactly once, across both workers"
    with services.db.session(TENANT) as s:
        assert s.scalar(select(func.count(ProcessedEvent.id)).where(ProcessedEvent.key.like("stats.monthly:%"))) == len(expected)


def main(argv: Sequence[str]) -> int:
    from bot.clock import FixedClock
    from bot.config import Settings
    from bot.context import Services
    from bot.core import Bot
    from bot.i18n import Prompts
    from handlers import build_registry

    url, when, ticks = argv[0], datetime.fromisoformat(argv[1]), int(argv[2])
    services = Services(settings=Settings(database_url=url, admins=["camille"], default_locale="en"), db=Database(url),
                        prompts=Prompts.load(), clock=FixedClock(when), registry=build_registry())

    def deliver(effects: Sequence[object]) -> None:
        time.sleep(0.01)  # like a network call
        for effect in effects:
            if isinstance(effect, Outbound):
                print(json.dumps({"to": effect.to.id, "key": effect.reply.key}), flush=True)

    services.deliver = deliver
    bot = Bot(services)
    jobs = [_job(bot, "stats.monthly"), _job(bot, "outbox.send")]
    time.sleep(max(0.0, float(argv[3]) - time.time()))
    started = time.time()
    for _ in range(ticks):
        for job in jobs:
            bot.run_job(job)
        services.clock.advance(timedelta(seconds=20))
    print(json.dumps({"started": started, "ended": time.time()}), flush=True)
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
