"""Real readers in a channel report, where the messenger tells who read (Matrix read receipts,
`MessageRead`): members who read the channel in the period, suppressed under the minimum group,
and no readers line at all where nothing is measured."""
from __future__ import annotations

from bot.core import Bot
from bot.types import MessageRead, UserRef
from store.analytics import Scope
from store.demo import DEMO_TENANT
from tests.test_ideas_support import Driver, everything, keys
from tests.test_stats import channel_id, post, report

SALES_READERS = ("sophie", "chloe", "nathan", "sarah", "james", "thomas")


def read(d: Driver, who: str, where: str, message_id: str) -> None:
    d.bot.handle(MessageRead(message_id=message_id, conversation=d.conversation(who, where),
                             user=UserRef("console", DEMO_TENANT, who), read_at=d.clock.now()))


def test_receipts_count_members_who_read_once_each(bot: Bot) -> None:
    d = Driver(bot)
    first = post(d, "julien", "#sales", "Le point de la semaine")
    for who in SALES_READERS:
        read(d, who, "#sales", first)
    read(d, "thomas", "#sales", first)  # twice: one reader
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")))
    assert r is not None and r.current.readers_measured and r.current.readers == 6
    out = d.say("julien", "#sales", "stats #sales")
    assert keys(out) == ["stats.report"]
    assert "Lecteurs (membres dont la messagerie a signalé la lecture du canal) — 7 jours : 6" in everything(out)  # #sales reads French


def test_a_few_readers_are_fewer_than_the_minimum(bot: Bot) -> None:
    d = Driver(bot)
    first = post(d, "julien", "#sales", "Le point de la semaine")
    for who in SALES_READERS[:2]:
        read(d, who, "#sales", first)
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")))
    assert r is not None and r.current.readers_measured and r.current.readers is None


def test_no_receipts_no_readers_line(bot: Bot) -> None:
    d = Driver(bot)
    post(d, "julien", "#sales", "Le point de la semaine")
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")))
    assert r is not None and not r.current.readers_measured and r.current.readers is None
    assert "Lecteurs" not in everything(d.say("julien", "#sales", "stats #sales"))


def test_a_non_member_reads_no_readers_figure(bot: Bot) -> None:
    d = Driver(bot)
    first = post(d, "julien", "#sales", "Le point de la semaine")
    for who in SALES_READERS:
        read(d, who, "#sales", first)
    assert report(d, "hugo", Scope("channel", channel_id(d, "sales"))) is None
