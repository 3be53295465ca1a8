"""Fresh skills: one "still true?" ping per stale skill, none when there is recent evidence,
and the Confirm / Remove buttons."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import Bot
from bot.types import Outbound, UserRef
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
    d.job("fresh.still_true")
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
    d.job("fresh.still_true")
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
    d.job("fresh.still_true")
    pings = _pings(d, "thomas")
    assert len(pings) == 1 and pings[0].reply.key == "fresh.still_true_many" and pings[0].reply.card is not None
    commands = [a.command for a in pings[0].reply.card.actions]
    assert commands[0].startswith("skill still ") and commands[0].endswith(" yes") and len(commands) == 4
    assert sorted(c[len("skill still "):-len(" no")] for c in commands[1:]) == ["SQL", "formation", "kubernetes"]
    assert keys(d.say("thomas", "dm", commands[0])) == ["fresh.confirmed"]
    assert all(link.reminded_at is None and link.confirmed_at == d.clock.now() for link in _skills_of(d, "thomas").values())
    assert keys(d.say("thomas", "dm", "skill still SQL, cobol no")) == ["fresh.not_declared"]
    assert "SQL" in _skills_of(d, "thomas")  # nothing partial
