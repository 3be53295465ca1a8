"""Newcomers: one welcome DM on a first join (through the notification budget, held by quiet
hours, in the newcomer's language, with the channel's purpose, animators and référents), set
or switched off by the channel's animators; no welcome for member syncs; the tour; and a
first-time contributor reaching the channel's animators."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bot.context import Services
from bot.core import Bot
from bot.types import ConversationRef, MembersChanged, Outbound, UserRef
from store.db import Database
from store.demo import DEMO_TENANT
from store.models.core import Person
from store.models.notifications import Notification
from tests.harness import driver
from tests.test_ideas_support import Driver, everything, keys


@pytest.fixture
def d(bot: Bot) -> Driver:
    drv = Driver(bot)
    drv.clock.advance(timedelta(days=1))  # the seeded members joined earlier
    return drv


def join(d: Driver, channel: str, *handles: str, kind: str = "public", bot_joined: bool = False) -> None:
    conv = ConversationRef("console", DEMO_TENANT, channel, kind, name=channel)  # type: ignore[arg-type]
    d.bot.handle(MembersChanged(conv, joined=tuple(UserRef("console", DEMO_TENANT, h) for h in handles), bot_joined=bot_joined))


def leave(d: Driver, channel: str, handle: str) -> None:
    conv = ConversationRef("console", DEMO_TENANT, channel, "public", name=channel)
    d.bot.handle(MembersChanged(conv, left=(UserRef("console", DEMO_TENANT, handle),)))


def queued(d: Driver, key: str) -> list[str]:
    with d.session() as s:
        return list(s.scalars(select(Person.handle).join(Notification, Notification.person_id == Person.id)
                              .where(Notification.key == key).order_by(Notification.id)))


def dms_to(effects: list[object], handle: str) -> list[Outbound]:
    return [e for e in effects if isinstance(e, Outbound) and isinstance(e.to, UserRef) and e.to.id == handle]


def test_first_join_gets_one_welcome_after_quiet_hours_in_their_language(d: Driver) -> None:
    d.clock.set(datetime(2026, 11, 24, 20, 30, tzinfo=timezone.utc))  # 20:30 in Paris (21:30): olivia's quiet hours
    join(d, "sales", "olivia")
    assert queued(d, "welcome.dm") == ["olivia"]
    d.clock.advance(timedelta(minutes=30))
    assert dms_to(d.job("notifications.flush"), "olivia") == []  # held by her quiet hours
    d.clock.set(datetime(2026, 11, 25, 8, 30, tzinfo=timezone.utc))
    [dm] = dms_to(d.job("notifications.flush"), "olivia")
    text = everything([dm])
    assert "Welcome to #sales" in text and "Julien" in text and "Sophie" in text and "skills add" in text  # English
    leave(d, "sales", "olivia")
    join(d, "sales", "olivia")
    assert queued(d, "welcome.dm") == ["olivia"]  # once, ever
    d.clock.advance(timedelta(hours=1))
    assert dms_to(d.job("notifications.flush"), "olivia") == []


def test_animators_set_the_text_in_both_languages_or_switch_it_off(d: Driver) -> None:
    assert keys(d.say("thomas", "#sales", "welcome set #sales en Hello")) == ["error.not_allowed"]
    assert keys(d.say("julien", "#sales", "welcome set #sales fr Ici on parle ventes et appels d'offres")) == ["welcome.set_missing"]
    assert keys(d.say("julien", "#sales", "welcome set #sales en Sales talk and tenders here")) == ["welcome.set"]
    assert keys(d.say("julien", "#sales", "welcome set #sales en " + "x" * 1600)) == ["welcome.too_long"]
    assert keys(d.say("julien", "#sales", "welcome set #sales")) == ["welcome.text_required"]
    shown = d.say("olivia", "dm", "welcome show #sales")
    assert keys(shown) == ["welcome.shown"] and "Sales talk and tenders here" in everything(shown)
    join(d, "sales", "olivia", "manon")  # olivia reads English, manon French
    with d.session() as s:
        params = dict(s.execute(select(Person.handle, Notification.params).join(Person, Person.id == Notification.person_id)
                                .where(Notification.key == "welcome.dm")).all())
    assert params["olivia"]["purpose"] == "Sales talk and tenders here"
    assert params["manon"]["purpose"] == "Ici on parle ventes et appels d'offres"
    assert keys(d.say("julien", "#sales", "welcome off #sales")) == ["welcome.off"]
    join(d, "sales", "zoe")
    assert sorted(queued(d, "welcome.dm")) == ["manon", "olivia"]


def test_member_syncs_and_the_bot_arriving_welcome_nobody(d: Driver) -> None:
    join(d, "marketing", "sophie", "thomas", "julien", "lucas", "emma", "hugo")  # a sync, not arrivals
    join(d, "support", "sophie", bot_joined=True)
    join(d, "general", "sophie")  # already a member
    assert queued(d, "welcome.dm") == []


def test_first_time_contributors_reach_the_animators_once(d: Driver) -> None:
    d.say("hugo", "#sales", "Hello, I am new to the tenders team", addressed=False, via="message")
    d.say("hugo", "#sales", "And a second message", addressed=False, via="message")
    d.say("julien", "#sales", "Welcome Hugo!", addressed=False, via="message")  # the animator himself
    assert queued(d, "welcome.first_contribution") == ["julien"]
    d.clock.advance(timedelta(minutes=30))
    [dm] = dms_to(d.job("notifications.flush"), "julien")
    assert "Hugo" in everything([dm]) and "#sales" in everything([dm])


def test_tour_in_three_steps(d: Driver) -> None:
    first = d.say("thomas", "dm", "visite")
    assert keys(first) == ["welcome.tour"]
    card = first[0].reply.card
    assert card is not None and [a.command for a in card.actions] == ["profil", "tour 2"]
    last = d.say("emma", "dm", "tour 3")
    assert [a.command for a in last[0].reply.card.actions] == ["suggestions"]  # no "next" after the last step
    assert keys(d.say("emma", "dm", "tour 9")) == ["welcome.tour_step"]


def test_a_welcome_text_over_the_limit_is_refused_and_one_at_the_limit_reaches_the_newcomer_whole(d: Driver) -> None:
    """1,500 characters at most (one Slack section holds 3,000, and the DM adds the channel's people)."""
    longest = "é" * 1499 + "!"
    assert keys(d.say("julien", "#sales", "welcome set #sales en " + longest + "!")) == ["welcome.too_long"]
    refused = d.say("julien", "#sales", "accueil définir #sales fr " + longest + "!")
    assert keys(refused) == ["welcome.too_long"] and "1\u202f501" in everything(refused) and "1\u202f500" in everything(refused)
    assert keys(d.say("julien", "#sales", "welcome set #sales en " + longest)) == ["welcome.set_missing"]
    join(d, "sales", "olivia")
    d.clock.advance(timedelta(minutes=30))
    [dm] = dms_to(d.job("notifications.flush"), "olivia")
    assert longest in everything([dm])


def test_two_processes_tell_the_animators_of_each_first_contribution_once_and_a_rolled_back_one_is_told_again(
        d: Driver, services: Services) -> None:
    """Each process remembers who spoke where once it is committed; the database judges first-ness."""
    other_db = Database(services.settings.database_url)  # a second worker process: its own engine and memory
    other = Bot(replace(services, db=other_db))
    try:
        d.say("hugo", "#sales", "Hello, I am new to the tenders team", addressed=False, via="message")
        driver.handle(other, "hugo", "#sales", "Me again, from the other worker", addressed=False, via="message", tenant=DEMO_TENANT)
        driver.handle(other, "manon", "#sales", "Bonjour à tous", addressed=False, via="message", tenant=DEMO_TENANT)
        d.say("manon", "#sales", "Encore moi", addressed=False, via="message")
        assert queued(d, "welcome.first_contribution") == ["julien", "julien"]  # hugo's and manon's, once each

        def crash(_session: Session) -> None:
            raise RuntimeError("the worker died before its commit")

        msg = d.message("zoe", "#sales", "First words, lost with the transaction", addressed=False, via="message")
        with pytest.raises(RuntimeError):
            d.bot.handle(msg, in_transaction=crash)
        assert len(queued(d, "welcome.first_contribution")) == 2
        d.say("zoe", "#sales", "First words, said again", addressed=False, via="message")  # not remembered: told now
        assert len(queued(d, "welcome.first_contribution")) == 3
    finally:
        other_db.dispose()


def test_a_known_contributor_costs_no_statement_in_an_animated_channel(d: Driver) -> None:
    d.say("hugo", "#sales", "Hello, I am new to the tenders team", addressed=False, via="message")
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = d.bot.services.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        d.say("hugo", "#sales", "A second message", addressed=False, via="message")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [s for s in seen if "channel_firsts" in s] == []
    assert queued(d, "welcome.first_contribution") == ["julien"]
