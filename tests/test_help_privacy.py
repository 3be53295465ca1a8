"""The privacy contract for help requests: a request asked in a private channel reaches only its
members (lists, cards, routing, escalation, similar answers, pings, exports) until its asker
clicks "share"; then experts outside see the question and the asker's name, nothing more.

#direction is private: camille, sophie, thomas and julien. Thomas is its only member who knows
escrow; emma and nathan know it too, from outside."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import Bot
from bot.types import Effect, Outbound, UserRef
from store.expertise import add_skills
from store.models.contribution import HelpRequest, HelpRouting
from store.models.core import Conversation, Person, Role
from store.models.notifications import Notification
from tests.test_ideas_support import Driver, everything, keys, outbound

QUESTION = "who can help with the BLUEBIRD escrow structure? #escrow"
SECRET = "BLUEBIRD"
OUTSIDERS = ("emma", "nathan")


@pytest.fixture
def d(bot: Bot) -> Driver:
    driver = Driver(bot)
    with driver.session() as s:
        for handle in ("thomas", *OUTSIDERS):
            add_skills(s, "console:demo", _person(s, handle), ["escrow"], driver.clock.now())
        # Nobody accepts mentions: every expert asked gets a DM, so a leak would show as one.
        s.execute(update(Person).values(accepts_mentions=False))
    driver.clock.advance(timedelta(hours=6))  # Monday 15:00 UTC: nobody's quiet hours
    return driver


def _person(s, handle: str) -> Person:  # type: ignore[no-untyped-def]
    return s.scalar(select(Person).where(Person.handle == handle))


def _routed(d: Driver, number: int) -> set[str]:
    with d.session() as s:
        rows = s.scalars(select(Person.handle).join(HelpRouting, HelpRouting.person_id == Person.id)
                         .join(HelpRequest, HelpRequest.id == HelpRouting.request_id).where(HelpRequest.number == number))
        return set(rows)


def _seen_by(effects: list[Effect], handle: str) -> str:
    """What `handle` alone is sent: DMs and private replies."""
    mine = [e for e in effects if isinstance(e, Outbound)
            and ((isinstance(e.to, UserRef) and e.to.id == handle) or (e.private_for is not None and e.private_for.id == handle))]
    return everything(mine)


def _pings(d: Driver, handle: str) -> list[Notification]:
    with d.session() as s:
        rows = s.scalars(select(Notification).join(Person, Person.id == Notification.person_id).where(Person.handle == handle))
        return list(rows)


def _export(d: Driver, handle: str) -> dict:  # type: ignore[type-arg]
    reply = outbound(d.say(handle, "dm", "export my data"), "privacy.exported").reply
    assert reply.attachment is not None
    return json.loads(reply.attachment[1])


def _route_outsider_directly(d: Driver, handle: str, number: int = 1) -> None:
    """A routing row to someone outside #direction, as the bug used to write."""
    with d.session() as s:
        req = s.scalar(select(HelpRequest).where(HelpRequest.number == number))
        person = _person(s, handle)
        if s.scalar(select(HelpRouting.id).where(HelpRouting.request_id == req.id, HelpRouting.person_id == person.id)) is None:
            s.add(HelpRouting(request_id=req.id, person_id=person.id, round=1, routed_at=d.clock.now()))


def test_routing_from_a_private_channel_reaches_its_members_only(d: Driver) -> None:
    effects = d.say("sophie", "#direction", f"ask {QUESTION}")
    assert _routed(d, 1) == {"thomas"}
    assert SECRET in _seen_by(effects, "thomas") and outbound(effects, "help_requests.notify.routed").to.id == "thomas"
    for handle in OUTSIDERS:
        assert _seen_by(effects, handle) == "" and _pings(d, handle) == []
    # The asker alone is offered the share button, told exactly what outsiders would see.
    offer = outbound(effects, "help_requests.share_offer")
    assert offer.private_for is not None and offer.private_for.id == "sophie"
    text = everything([offer])
    assert SECRET in text and "Sophie" in text and "ask share 1" in text


def test_enough_candidates_are_considered_to_find_a_member(d: Driver) -> None:
    """Thomas's skill is stale and 30 fresher experts outside rank before him: he is still found."""
    d.clock.advance(timedelta(days=200))
    with d.session() as s:
        outside = s.scalars(select(Person).where(Person.handle.not_in(("camille", "sophie", "thomas", "julien")),
                                                 Person.is_bot.is_(False)).order_by(Person.id).limit(30)).all()
        for person in outside:
            add_skills(s, "console:demo", person, ["escrow"], d.clock.now())
    d.say("sophie", "#direction", f"ask {QUESTION}")
    assert _routed(d, 1) == {"thomas"}


def test_asks_and_ask_show_hide_a_private_request_from_non_members(d: Driver) -> None:
    d.say("sophie", "#direction", f"ask {QUESTION}")
    _route_outsider_directly(d, "emma")  # even routed by mistake, emma is not a member
    for handle in ("emma", "lea"):
        assert SECRET not in everything(d.say(handle, "#general", "asks"))
        assert keys(d.say(handle, "#general", "ask show 1")) == ["help_requests.not_found"]
        assert keys(d.say(handle, "#general", "ask take 1")) == ["help_requests.not_found"]
        assert keys(d.say(handle, "#general", "ask more 1")) == ["help_requests.not_found"]
    assert SECRET in everything(d.say("julien", "#general", "asks"))  # a member, not even routed
    shown = d.say("julien", "#general", "ask show 1")
    assert keys(shown) == ["help_requests.shown"] and SECRET in everything(shown)


def test_similar_answers_come_only_from_requests_the_reader_may_read(d: Driver) -> None:
    d.say("sophie", "#direction", f"ask {QUESTION}")
    d.say("sophie", "#direction", "ask resolve 1 Use the Lazard escrow template")
    answer = "Lazard escrow template"
    assert answer not in everything(d.say("emma", "dm", "ask How to set up an escrow structure? #escrow"))
    assert answer not in everything(d.say("thomas", "#general", "ask Escrow structure for a deal? #escrow"))
    assert answer in everything(d.say("thomas", "dm", "ask How to set up an escrow structure? #escrow"))
    assert answer in everything(d.say("julien", "#direction", "ask Escrow structure for the deal? #escrow"))


def test_escalation_stays_inside_and_offers_the_asker_to_share(d: Driver) -> None:
    with d.session() as s:
        direction = s.scalar(select(Conversation).where(Conversation.external_id == "direction"))
        for handle in ("lea", "julien"):  # lea holds the role without being a member
            s.add(Role(person_id=_person(s, handle).id, role="referent", conversation_id=direction.id, created_at=d.clock.now()))
    d.say("sophie", "#direction", f"ask {QUESTION}")
    d.clock.advance(timedelta(days=1))  # Tuesday 15:00 UTC: 4 working hours in Paris are over
    effects = d.job("help.escalate")
    assert "help_requests.escalated" in keys(effects)
    assert SECRET in _seen_by(effects, "julien")
    for handle in ("lea", *OUTSIDERS):
        assert _seen_by(effects, handle) == "" and _pings(d, handle) == []
    assert _routed(d, 1) == {"thomas"}
    offer = [p for p in _pings(d, "sophie") if p.key == "help_requests.notify.share_offer"]
    assert offer and offer[0].actions[0][1] == "ask share 1"


def test_pings_and_their_feed_keep_a_private_request_from_non_members(d: Driver) -> None:
    d.say("sophie", "#direction", f"ask {QUESTION}")
    d.clock.advance(timedelta(hours=1))
    flushed = d.job("notifications.flush")
    for handle in OUTSIDERS:
        assert _pings(d, handle) == [] and _seen_by(flushed, handle) == ""
    routed = [p for p in _pings(d, "thomas") if p.key == "help_requests.notify.routed"]
    assert routed and SECRET in routed[0].params["question"]


def test_exports_show_a_routed_person_only_requests_they_may_read(d: Driver) -> None:
    d.say("sophie", "#direction", f"ask {QUESTION}")
    _route_outsider_directly(d, "emma")
    emma = _export(d, "emma")
    assert SECRET not in json.dumps(emma) and emma["help_requests_not_shown"] == 1
    thomas = _export(d, "thomas")
    assert [(r["number"], r["role"]) for r in thomas["help_requests"]] == [(1, "asked")] and thomas["help_requests_not_shown"] == 0
    assert SECRET in thomas["help_requests"][0]["question"]


def test_sharing_lets_outside_experts_see_exactly_the_question(d: Driver) -> None:
    d.say("sophie", "#direction", f"ask {QUESTION}")
    assert keys(d.say("thomas", "#direction", "ask share 1")) == ["help_requests.share_not_asker"]
    assert keys(d.say("emma", "#general", "ask share 1")) == ["help_requests.not_found"]
    assert all(_pings(d, h) == [] for h in OUTSIDERS) and keys(d.say("emma", "#general", "ask show 1")) == ["help_requests.not_found"]

    effects = d.say("sophie", "#direction", "ask share 1")
    assert {"help_requests.shared_post", "help_requests.shared"} <= set(keys(effects))
    assert _routed(d, 1) == {"thomas", *OUTSIDERS}
    for handle in OUTSIDERS:
        dm = [e for e in effects if isinstance(e, Outbound) and isinstance(e.to, UserRef) and e.to.id == handle]
        assert [e.reply.key for e in dm] == ["help_requests.notify.shared"]
        text = dm[0].reply.text
        assert SECRET in text and "Sophie" in text and "direction" not in text  # no link into the channel
    with d.session() as s:
        req = s.scalar(select(HelpRequest).where(HelpRequest.number == 1))
        assert req.shared_at == d.clock.now() and req.shared_by == _person(s, "sophie").id
    assert keys(d.say("sophie", "#direction", "ask share 1")) == ["help_requests.already_shared"]

    # Emma may now read the question, taking it tells her to answer Sophie directly; not the answer.
    shown = d.say("emma", "dm", "ask show 1")
    assert keys(shown) == ["help_requests.shown"] and SECRET in everything(shown) and "direction" not in everything(shown)
    taken = d.say("emma", "dm", "ask take 1")
    assert "help_requests.taken_outside" in keys(taken)
    d.say("sophie", "#direction", "ask resolve 1 Lazard escrow template, see the board minutes")
    assert "board minutes" not in everything(d.say("emma", "dm", "ask show 1"))
    assert keys(d.say("lea", "#general", "ask show 1")) == ["help_requests.not_found"]  # shared with routed experts only


def test_a_public_request_needs_no_sharing(d: Driver) -> None:
    d.say("sophie", "#sales", "ask Escrow structure for Airbus? #escrow")
    assert keys(d.say("sophie", "#sales", "ask share 1")) == ["help_requests.share_not_needed"]


def test_a_request_in_a_dm_with_the_bot_is_routed_and_read_by_its_experts_only(d: Driver) -> None:
    effects = d.say("sophie", "dm", f"ask {QUESTION}")
    routed = _routed(d, 1)
    assert routed == {"thomas", *OUTSIDERS} and "help_requests.share_offer" not in keys(effects)
    assert all(SECRET in _seen_by(effects, h) for h in routed)
    assert keys(d.say("emma", "#general", "ask show 1")) == ["help_requests.shown"]
    assert keys(d.say("lea", "#general", "ask show 1")) == ["help_requests.not_found"]
    assert SECRET not in everything(d.say("lea", "#general", "asks"))
