"""Fresh skills: one "still true?" ping per stale skill, none when there is recent evidence,
and the Confirm / Remove buttons."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.core import Bot
from bot.types import Effect, Outbound, UserRef
from handlers.fresh_skills import MAX_PEOPLE_PER_RUN, SPREAD_DAYS, reminder_day, today_in_cycle
from store.expertise import add_evidence
from store.models.core import Person, PersonSkill, Skill
from tests.test_ideas_support import Driver, keys

TENANT = "console:demo"


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def _age(d: Driver, handle: str, skill: str, days: int) -> int:
    """Make `handle`'s `skill` last confirmed `days` ago; returns the link id."""
    with d.session() as s:
        person = s.scalar(select(Person).where(Person.handle == handle))
        link = s.scalar(select(PersonSkill).join(Skill, Skill.id == PersonSkill.skill_id)
                        .where(PersonSkill.person_id == person.id, Skill.name == skill))
        link.confirmed_at = d.clock.now() - timedelta(days=days)
        link.reminded_at = None
        return link.id


def _pings(d: Driver, handle: str) -> list[Outbound]:
    d.clock.advance(timedelta(minutes=10))
    return [e for e in d.job("notifications.flush") if isinstance(e, Outbound) and isinstance(e.to, UserRef) and e.to.id == handle]


def _run_on_day_of(d: Driver, handle: str) -> list[Effect]:
    """Move the clock on (whole days) to `handle`'s reminder day, then run the reminder job."""
    with d.session() as s:
        person_id = s.scalar(select(Person.id).where(Person.handle == handle))
    while today_in_cycle(d.clock.now()) != reminder_day(person_id):
        d.clock.advance(timedelta(days=1))
    return d.job("fresh.still_true")


def _skills_of(d: Driver, handle: str) -> dict[str, PersonSkill]:
    with d.session() as s:
        person = s.scalar(select(Person).where(Person.handle == handle))
        rows = s.execute(select(Skill.name, PersonSkill).join(PersonSkill, PersonSkill.skill_id == Skill.id)
                         .where(PersonSkill.person_id == person.id))
        return {name: link for name, link in rows}


def test_a_stale_skill_gets_one_reminder_with_buttons(d: Driver) -> None:
    with d.session() as s:
        s.execute(update(PersonSkill).values(confirmed_at=d.clock.now(), reminded_at=None))
    _age(d, "thomas", "formation", 200)
    _age(d, "sophie", sorted(_skills_of(d, "sophie"))[0], 100)  # not stale yet
    _run_on_day_of(d, "thomas")
    pings = _pings(d, "thomas")
    assert len(pings) == 1 and pings[0].reply.key == "fresh.still_true" and "formation" in pings[0].reply.text
    assert pings[0].reply.card is not None
    assert [a.command for a in pings[0].reply.card.actions] == ["skill still formation yes", "skill still formation no"]
    assert _pings(d, "sophie") == []
    d.job("fresh.still_true")
    assert _pings(d, "thomas") == []  # once
    assert _skills_of(d, "thomas")["formation"].reminded_at is not None


def test_recent_evidence_means_not_stale(d: Driver) -> None:
    with d.session() as s:
        s.execute(update(PersonSkill).values(confirmed_at=d.clock.now(), reminded_at=None))
    link_id = _age(d, "thomas", "kubernetes", 200)
    with d.session() as s:
        thomas = s.scalar(select(Person).where(Person.handle == "thomas"))
        add_evidence(s, TENANT, thomas.id, "kubernetes", "kudos", d.clock.now() - timedelta(days=3), source_ref="k:1")
    _run_on_day_of(d, "thomas")
    assert _pings(d, "thomas") == []
    with d.session() as s:
        assert s.get(PersonSkill, link_id).reminded_at is None


def test_confirm_and_remove_buttons(d: Driver) -> None:
    _age(d, "thomas", "kubernetes", 200)
    assert keys(d.say("thomas", "dm", "skill still kubernetes yes")) == ["fresh.confirmed"]
    link = _skills_of(d, "thomas")["kubernetes"]
    assert link.confirmed_at == d.clock.now() and link.reminded_at is None
    assert keys(d.say("thomas", "dm", "compétence toujours Kubernetes non")) == ["fresh.removed"]
    assert "kubernetes" not in _skills_of(d, "thomas")
    assert keys(d.say("thomas", "dm", "skill still kubernetes yes")) == ["fresh.not_declared"]
    assert keys(d.say("thomas", "dm", "skill still kubernetes perhaps")) == ["fresh.usage_error"]


def test_several_stale_skills_make_one_ping_with_one_button_each(d: Driver) -> None:
    with d.session() as s:
        s.execute(update(PersonSkill).values(confirmed_at=d.clock.now(), reminded_at=None))
    for skill in ("formation", "SQL", "kubernetes"):
        _age(d, "thomas", skill, 190)
    _run_on_day_of(d, "thomas")
    pings = _pings(d, "thomas")
    assert len(pings) == 1 and pings[0].reply.key == "fresh.still_true_many" and pings[0].reply.card is not None
    commands = [a.command for a in pings[0].reply.card.actions]
    assert commands[0].startswith("skill still ") and commands[0].endswith(" yes") and len(commands) == 4
    assert sorted(c[len("skill still "):-len(" no")] for c in commands[1:]) == ["SQL", "formation", "kubernetes"]
    assert keys(d.say("thomas", "dm", commands[0])) == ["fresh.confirmed"]
    assert all(link.reminded_at is None and link.confirmed_at == d.clock.now() for link in _skills_of(d, "thomas").values())
    assert keys(d.say("thomas", "dm", "skill still SQL, cobol no")) == ["fresh.not_declared"]
    assert "SQL" in _skills_of(d, "thomas")  # nothing partial


def _stale_people(d: Driver) -> set[str]:
    cutoff = d.clock.now() - timedelta(days=d.bot.services.settings.skill_stale_days)
    with d.session() as s:
        return set(s.scalars(select(Person.handle).join(PersonSkill, PersonSkill.person_id == Person.id)
                             .where(PersonSkill.confirmed_at < cutoff, Person.is_bot.is_(False))))


def _run_hours(d: Driver, hours: int, step: int = 3) -> tuple[list[Outbound], list[int]]:
    """Every `step` hours: the reminder job, then the notifications' flush. Returns the
    reminders delivered and how many people each run of the job asked."""
    pings: list[Outbound] = []
    asked: list[int] = []
    for _ in range(0, hours, step):
        with d.session() as s:
            before = s.scalar(select(func.count(func.distinct(PersonSkill.person_id))).where(PersonSkill.reminded_at.is_not(None)))
        d.job("fresh.still_true")
        with d.session() as s:
            after = s.scalar(select(func.count(func.distinct(PersonSkill.person_id))).where(PersonSkill.reminded_at.is_not(None)))
        asked.append(after - before)
        d.clock.advance(timedelta(hours=step))
        pings += [e for e in d.job("notifications.flush") if isinstance(e, Outbound) and e.reply.key.startswith("fresh.still_true")]
    return pings, asked


def test_a_new_workspace_gets_a_few_reminders_a_day_and_everyone_stale_one_over_the_cycle(d: Driver) -> None:
    """The demo organisation, where about two dozen people have stale skills: no burst at the
    first run, and after one cycle each of them was asked exactly once, in their language."""
    stale = _stale_people(d)
    assert len(stale) > SPREAD_DAYS  # the burst this prevents
    first_day, asked = _run_hours(d, 24)
    assert 0 < len(first_day) <= 4 or (first_day == [] and sum(asked) == 0)
    rest, more = _run_hours(d, 24 * (SPREAD_DAYS - 1))
    everyone = first_day + rest
    recipients = [p.to.id for p in everyone if isinstance(p.to, UserRef)]
    assert len(recipients) == len(set(recipients))  # never twice
    assert stale <= set(recipients) <= _stale_people(d)  # everyone stale at the start, and those stale since
    assert max(asked + more) <= MAX_PEOPLE_PER_RUN
    by_day = [sum(asked[i:i + 8]) for i in range(0, len(asked), 8)] + [sum(more[i:i + 8]) for i in range(0, len(more), 8)]
    assert max(by_day) <= 4 and sum(1 for n in by_day if n) >= SPREAD_DAYS // 2  # spread over the cycle
    with d.session() as s:
        french = set(s.scalars(select(Person.handle).where(Person.locale == "fr")))
    for ping in everyone:
        text = ping.reply.text
        assert ("toujours" in text) == (ping.to.id in french) and ("still" in text) == (ping.to.id not in french), text
    again, _ = _run_hours(d, 24 * SPREAD_DAYS, step=6)
    assert not {p.to.id for p in again if isinstance(p.to, UserRef)} & set(recipients)  # only the newly stale


def test_a_run_asks_a_bounded_number_of_people(d: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when many people share a reminder day (here: a one-day cycle), one run asks at
    most `MAX_PEOPLE_PER_RUN` of them and the next runs ask the others."""
    monkeypatch.setattr("handlers.fresh_skills.SPREAD_DAYS", 1)
    stale = _stale_people(d)
    _, asked = _run_hours(d, 3 * (len(stale) // MAX_PEOPLE_PER_RUN + 2))
    assert asked[0] == MAX_PEOPLE_PER_RUN and max(asked) == MAX_PEOPLE_PER_RUN and sum(asked) == len(stale)
