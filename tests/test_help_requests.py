"""Help requests: working hours, routing (asker, away, cap, rotation, mentions), shortcut
threads, help channels, escalation once across processes, resolve → evidence and thanks."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.context import Services
from bot.core import Bot
from bot.text import ping_marker
from bot.types import Outbound, UserRef
from handlers.help_routing import add_working_hours
from handlers import build_registry
from store.db import Database
from store.expertise import add_skills
from store.models.contribution import HelpRequest, HelpRouting, Kudos
from store.models.core import Evidence, Person, PostedMessage
from tests.test_ideas_support import Driver, everything, keys, outbound

PARIS = ZoneInfo("Europe/Paris")
SKILLED = ("lucas", "emma", "hugo", "nathan")


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def _skilled(d: Driver, handles: tuple[str, ...] = SKILLED, skill: str = "quantum annealing") -> None:
    with d.session() as s:
        for handle in handles:
            person = s.scalar(select(Person).where(Person.handle == handle))
            add_skills(s, "console:demo", person, [skill], d.clock.now())


def _routed(d: Driver, number: int) -> list[str]:
    with d.session() as s:
        req = s.scalar(select(HelpRequest).where(HelpRequest.number == number))
        rows = s.execute(select(Person.handle).join(HelpRouting, HelpRouting.person_id == Person.id)
                         .where(HelpRouting.request_id == req.id).order_by(HelpRouting.id))
        return [h for (h,) in rows]


@pytest.mark.parametrize("start, hours, expected", [
    (datetime(2026, 11, 23, 10, 0), 4, datetime(2026, 11, 23, 14, 0)),   # Monday morning
    (datetime(2026, 11, 27, 16, 0), 4, datetime(2026, 11, 30, 11, 0)),   # Friday afternoon → Monday
    (datetime(2026, 11, 28, 11, 0), 4, datetime(2026, 11, 30, 13, 0)),   # Saturday → Monday
    (datetime(2026, 11, 24, 7, 30), 1, datetime(2026, 11, 24, 10, 0)),   # before opening
    (datetime(2026, 11, 24, 19, 0), 10, datetime(2026, 11, 26, 10, 0)),  # after closing, spans a full day
])
def test_working_hours_in_the_channel_time_zone(start: datetime, hours: float, expected: datetime) -> None:
    got = add_working_hours(start.replace(tzinfo=PARIS), hours, PARIS)
    assert got == expected.replace(tzinfo=PARIS).astimezone(timezone.utc)


def test_route_skips_the_asker_and_people_away_and_rotates_among_equals(d: Driver) -> None:
    _skilled(d)
    assert keys(d.say("hugo", "#engineering", "away until 2026-12-01")) == ["help_requests.away_set"]
    assert keys(d.say("hugo", "#engineering", "away until 2026-11-01")) == ["help_requests.away_past"]
    assert keys(d.say("lucas", "#engineering", "ask How to tune quantum annealing? #quantumannealing")) == ["help_requests.card"]
    first = _routed(d, 1)
    assert "lucas" not in first and "hugo" not in first and set(first) == {"emma", "nathan"}
    assert keys(d.say("hugo", "#engineering", "back")) == ["help_requests.back"]
    assert keys(d.say("hugo", "#engineering", "back")) == ["help_requests.back_not_away"]
    d.say("thomas", "#engineering", "ask Quantum annealing schedules? #quantumannealing")
    second = _routed(d, 2)
    assert set(second[:2]) == {"hugo", "lucas"} and len(second) == 3  # never-asked ones first, then the least recent


def test_weekly_cap_protects_experts(d: Driver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.expert_weekly_cap = 2
    _skilled(d, ("emma", "nathan"))
    for i in range(3):
        d.say("thomas", "#engineering", f"ask Quantum annealing question {i} #quantumannealing")
    assert _routed(d, 1) and _routed(d, 2) and _routed(d, 3) == []
    assert "help_requests.no_experts" not in everything(d.say("thomas", "#engineering", "ask show 3"))
    d.clock.advance(timedelta(days=8))
    d.say("thomas", "#engineering", "ask Quantum annealing question again #quantumannealing")
    assert set(_routed(d, 4)) == {"emma", "nathan"}  # a new week


def test_experts_who_refuse_mentions_get_a_dm_not_a_ping(d: Driver) -> None:
    _skilled(d, ("emma", "nathan"))
    with d.session() as s:
        s.execute(update(Person).where(Person.handle == "emma").values(accepts_mentions=False))
    d.clock.advance(timedelta(hours=6))  # 15:00 UTC: nobody's quiet hours
    effects = d.say("thomas", "#engineering", "ask Quantum annealing for routing? #quantumannealing")
    card = outbound(effects, "help_requests.card")
    text = everything([card])
    assert ping_marker("nathan") in text and ping_marker("emma") not in text and "Emma" in text
    dms = [e for e in effects if isinstance(e, Outbound) and isinstance(e.to, UserRef)]
    assert [e.to.id for e in dms] == ["emma"] and dms[0].reply.key == "help_requests.notify.routed"
    assert "console://engineering/" in dms[0].reply.text  # a link back to the question


def test_shortcut_answers_in_the_source_thread_once(d: Driver) -> None:
    ask = dict(via="shortcut", source_id="1700000000.000100", source_text="Who knows #terraform modules well?",
               source_permalink="console://engineering/1700000000.000100")
    card = outbound(d.say("emma", "#engineering", "ask", **ask), "help_requests.card")  # type: ignore[arg-type]
    assert card.thread_id == "1700000000.000100" and card.anchor == "help:1"
    assert keys(d.say("emma", "#engineering", "ask", **ask)) == ["help_requests.already_asked"]  # type: ignore[arg-type]
    reply_in_thread = dict(ask, source_id="1700000000.000200", thread_id="1700000000.000100")
    assert outbound(d.say("hugo", "#engineering", "ask", **reply_in_thread), "help_requests.card").thread_id == "1700000000.000100"  # type: ignore[arg-type]
    assert keys(d.say("emma", "#engineering", "ask")) == ["help_requests.form"]
    assert keys(d.say("emma", "#engineering", "ask", via="form", form_values={"question": "Any #python linter tips?"})) == [
        "help_requests.card"]


def test_help_channel_messages_become_requests_once_and_thread_replies_stop_escalation(d: Driver) -> None:
    assert keys(d.say("lucas", "#support", "help channel #support on 2h")) == ["error.not_allowed"]
    assert keys(d.say("camille", "#support", "help channel #support on 2h")) == ["help_requests.channel_on"]
    msg = d.message("hugo", "#support", "Customer asks about #RGPD data retention, any pointer?", addressed=False,
                    via="message", msg_id="s-1")
    assert keys(d.bot.handle(msg)) == ["help_requests.card"]
    assert d.bot.handle(msg) == []  # redelivered by the platform: no second request
    assert keys(d.say("hugo", "#support", "ok", addressed=False, via="message")) == []  # too short to be a question
    d.say("hugo", "#support", "Thanks, any news?", addressed=False, via="message", thread_id="s-1")  # the asker: not an answer
    with d.session() as s:
        assert s.scalar(select(HelpRequest.answered_at).where(HelpRequest.number == 1)) is None
    d.say("lea", "#support", "See the retention policy page", addressed=False, via="message", thread_id="s-1")
    d.clock.advance(timedelta(hours=3))
    assert d.job("help.escalate") == []
    with d.session() as s:
        assert s.scalar(select(HelpRequest.escalated_at).where(HelpRequest.number == 1)) is None


def test_a_reply_under_the_bots_card_counts_as_an_answer(d: Driver) -> None:
    """A slash command has no message of its own: the thread is the card's, as the adapter recorded it."""
    d.say("thomas", "#engineering", "ask Who reviews #terraform modules?")
    with d.session() as s:
        s.add(PostedMessage(anchor="help:1", conversation_external_id="engineering", message_ref="engineering|1700.000900"))
    d.say("lucas", "#engineering", "I can, send the PR", addressed=False, via="message", thread_id="1700.000900")
    d.clock.advance(timedelta(days=1))
    assert keys(d.job("help.escalate")) == []


def test_escalation_happens_once_across_two_processes(d: Driver, services: Services) -> None:
    d.say("thomas", "#sales", "ask Multi-year #pricing grid for Airbus?")
    d.say("emma", "#sales", "ask Someone to take this one? #pricing")
    d.say("lucas", "#sales", "ask take 2")
    d.clock.advance(timedelta(hours=3, minutes=55))
    assert d.job("help.escalate") == []  # 4 working hours not yet over
    d.clock.advance(timedelta(minutes=10))
    other_db = Database(services.settings.database_url)
    other = Bot(Services(settings=services.settings, db=other_db, prompts=services.prompts, clock=services.clock,
                         registry=build_registry()))
    job = next(j for j in other.registry.jobs if j.name == "help.escalate")
    effects = d.job("help.escalate") + other.run_job(job) + d.job("help.escalate")
    other_db.dispose()
    assert keys(effects).count("help_requests.escalated") == 1  # request 2 was taken: never escalated
    post = outbound(effects, "help_requests.escalated")
    assert ping_marker("sophie") in post.reply.text and post.to.id == "sales"
    assert outbound(effects, "help_requests.card").anchor == "help:1"
    assert any(isinstance(e, Outbound) and isinstance(e.to, UserRef) and e.to.id == "sophie" for e in effects)
    assert len(_routed(d, 1)) > 3  # widened to the next experts


def test_resolve_records_the_answer_evidence_and_one_click_thanks(d: Driver) -> None:
    d.say("sophie", "#sales", "ask Who answered an aeronautics tender? #appeloffres")
    assert keys(d.say("sophie", "#sales", "ask thank 1")) == ["help_requests.thank_no_helper"]
    d.say("lucas", "#sales", "ask take 1")
    assert keys(d.say("emma", "#sales", "ask resolve 1 whatever")) == ["help_requests.resolve_not_allowed"]
    form = outbound(d.say("lucas", "#sales", "ask resolve 1"), "help_requests.resolve_form").reply.form
    assert form is not None and form.submit_command == "ask resolve 1"
    done = d.say("lucas", "#sales", "ask resolve 1", via="form",
                 form_values={"answer": "Use the 2025 Airbus template", "helper": ""})
    assert keys(done) == ["help_requests.card", "help_requests.resolved_post", "help_requests.resolved_by_helper"]
    assert keys(d.say("sophie", "#sales", "ask resolve 1 again")) == ["help_requests.already_resolved"]
    with d.session() as s:
        lucas = s.scalar(select(Person).where(Person.handle == "lucas"))
        evidence = s.scalars(select(Evidence).where(Evidence.person_id == lucas.id, Evidence.kind == "help")).all()
        assert {e.topic_key for e in evidence} >= {"appeloffres"} and all(e.source_ref == "help:1" for e in evidence)
    assert keys(d.say("lucas", "#sales", "ask thank 1")) == ["help_requests.thank_not_asker"]
    assert keys(d.say("sophie", "#sales", "ask thank 1")) == ["kudos.card"]
    with d.session() as s:
        assert len(s.scalars(select(Kudos).where(Kudos.help_request_id.is_not(None))).all()) == 1
    similar = d.say("hugo", "#sales", "ask Template for an aeronautics tender? #appeloffres")
    assert "Use the 2025 Airbus template" in everything(similar)


def test_answers_from_a_private_channel_are_not_offered_elsewhere(d: Driver) -> None:
    d.say("sophie", "#direction", "ask Budget for the #pricing reorganisation?")
    d.say("sophie", "#direction", "ask resolve 1 Confidential: 12% cut")
    public = d.say("hugo", "#sales", "ask Budget for the #pricing reorganisation?")
    assert "12% cut" not in everything(public)
    same_room = d.say("thomas", "#direction", "ask Budget for the #pricing reorganisation again?")
    assert "12% cut" in everything(same_room)
    assert keys(d.say("lea", "#general", "ask show 3")) == ["help_requests.not_found"]  # not a member of #direction
    assert keys(d.say("thomas", "#general", "ask show 3")) == ["help_requests.shown"]
    assert "reorganisation again" not in everything(d.say("lea", "#general", "asks"))
    assert "reorganisation again" in everything(d.say("julien", "#general", "asks"))
