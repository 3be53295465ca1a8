"""Kudos: reasons, recipients, no self-kudos, allowance per local day, evidence with the
reciprocity discount, DMs within the budget, a leaderboard that never pings."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core import Bot
from bot.text import MARK_OPEN
from bot.types import Outbound, UserRef
from handlers.kudos import parse_reason
from store.models.contribution import Kudos
from store.models.core import Evidence, Person
from tests.harness.console import ConsoleHarness
from tests.scenarios import Step
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


@pytest.mark.parametrize("args, reason", [
    ("@lucas @emma for the terraform review #terraform", "the terraform review"),
    ("\u27e6@lucas\u27e7, pour le café", "le café"),
    ("(@lucas) because you rock #kudos", "you rock"),
    ("@lucas", ""),
])
def test_parse_reason(args: str, reason: str) -> None:
    assert parse_reason(args) == reason


def test_card_dms_and_refusals(d: Driver) -> None:
    d.clock.advance(timedelta(hours=6))  # 15:00 UTC: nobody's quiet hours
    given = d.say("thomas", "#engineering", "thanks @lucas @emma for the terraform review #terraform")
    card = outbound(given, "kudos.card")
    assert card.private_for is None and card.to.id == "engineering"
    assert "terraform review" in everything([card])
    assert keys(d.say("thomas", "#engineering", "thanks @thomas for being me")) == ["kudos.self"]
    assert keys(d.say("thomas", "#engineering", "thanks @lucas")) == ["kudos.reason_required"]
    assert keys(d.say("thomas", "#engineering", "thanks for nothing")) == ["kudos.who"]
    assert keys(d.say("thomas", "#engineering", "thanks @nobody for the help")) == ["error.unknown_person"]
    assert keys(d.say("thomas", "#engineering", "thanks @causette for the help")) == ["kudos.bot"]
    d.clock.advance(timedelta(minutes=10))
    dms = [e for e in d.job("notifications.flush") if isinstance(e, Outbound) and isinstance(e.to, UserRef)]
    assert {e.to.id for e in dms if e.reply.key == "kudos.notify.received"} == {"lucas", "emma"}


def test_allowance_counts_recipients_and_resets_the_next_day(d: Driver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.kudos_daily_allowance = 3
    assert keys(d.say("thomas", "#general", "thanks @lucas @emma for the demo")) == ["kudos.card"]
    refused = d.say("thomas", "#general", "thanks @hugo @lea for the party")
    assert keys(refused) == ["kudos.allowance"] and refused[0].reply.params == {"allowance": 3, "left": 1}
    with d.session() as s:
        assert len(s.scalars(select(Kudos)).all()) == 2  # nothing partial was written
    assert keys(d.say("thomas", "#general", "thanks @hugo for the party")) == ["kudos.card"]
    assert keys(d.say("thomas", "#general", "thanks @lea for the party")) == ["kudos.allowance"]
    d.clock.advance(timedelta(days=1))
    assert keys(d.say("thomas", "#general", "thanks @lea for the party")) == ["kudos.card"]


def test_skill_kudos_add_evidence_and_reciprocal_ones_weigh_less(d: Driver) -> None:
    d.say("thomas", "#engineering", "thanks @lucas for the review #terraform")
    d.say("lucas", "#engineering", "thanks @thomas for the cluster #kubernetes")
    d.say("emma", "#engineering", "thanks @thomas for the upgrade #kubernetes")
    with d.session() as s:
        rows = s.execute(select(Person.handle, Evidence.topic_key, Evidence.weight).join(Person, Person.id == Evidence.person_id)
                         .where(Evidence.kind == "kudos").order_by(Evidence.id)).all()
    assert [tuple(r) for r in rows] == [("lucas", "terraform", 1.0), ("thomas", "kubernetes", 0.5), ("thomas", "kubernetes", 1.0)]


def test_leaderboard_names_without_pinging_and_respects_the_period(d: Driver) -> None:
    d.say("thomas", "#general", "thanks @lucas for the review")
    d.clock.advance(timedelta(days=10))
    d.say("emma", "#general", "thanks @hugo for the help")
    d.say("thomas", "#general", "thanks @hugo for the slides")
    week = d.say("nathan", "#general", "kudos top week")
    assert keys(week) == ["kudos.top"]
    text = everything(week)
    assert MARK_OPEN not in text and "Hugo Leroy — 2" in text and "Lucas" not in text
    assert "Lucas Petit — 1" in everything(d.say("nathan", "#general", "kudos top all"))
    assert "Lucas" in everything(d.say("nathan", "#general", "merci top mois"))
    assert keys(d.say("nathan", "#general", "kudos top decade")) == ["kudos.period_unknown"]


def test_thanking_the_bot_itself_mid_sentence_through_the_console(bot: Bot) -> None:
    """The console removes the bot's mention wherever it stands, as Slack and Teams do: thanking
    it still gets the "thank the people instead" answer, in the speaker's language."""
    h = ConsoleHarness(bot)

    def said(who: str, text: str, where: str = "#sales") -> list[tuple[str, str]]:
        return [(s.key, s.text) for s in h.run_step(Step(who, where, text, command=False))]

    for text in ("thanks @causette for the help", "thanks @causette!", "thanks @thomas and @causette for the demo",
                 "hey @causette thanks"):
        seen = said("james", text)
        assert [key for key, _ in seen] == ["kudos.bot"], text
        assert "thank the people instead" in seen[0][1]
    seen = said("sophie", "merci @causette pour le coup de main")
    assert [key for key, _ in seen] == ["kudos.bot"] and "remerciez plutôt les personnes" in seen[0][1]
    assert [key for key, _ in said("james", "thanks", "dm")] == ["error.missing_argument"]
    assert [key for key, _ in said("james", "@causette thanks")] == ["error.missing_argument"]
    assert "kudos.card" in [key for key, _ in said("james", "thanks @thomas for the review @causette")]
    assert "kudos.card" in [key for key, _ in said("james", "hey @causette, thanks @lucas for the demo")]
