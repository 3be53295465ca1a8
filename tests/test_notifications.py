"""The notification budget: grouping, one ping per thread, quiet hours, cap, snooze, urgency,
and two workers flushing the same queue."""
from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest

from handlers.notifications import budget as notif
from bot.context import Ctx, Services
from bot.core import Bot
from bot.types import Action, Outbound, UserRef
from store import notifications as queue
from store.db import ALL_TENANTS
from store.models.core import Person, Workspace
from store.people import ensure_workspace
from tests.harness import driver

TENANT = "T1"


def _person(services: Services, handle: str, tz: str = "Europe/Paris", locale: str | None = "en") -> int:
    with services.db.session(TENANT) as s:
        ensure_workspace(s, TENANT, "console", "en")
        now = services.clock.now()
        p = Person(external_id=handle, handle=handle, display_name=handle.title(), tz=tz, locale=locale, created_at=now, updated_at=now)
        s.add(p)
        s.flush()
        return p.id


def _notify(services: Services, person_id: int, key: str = "notifications.single_title", **kw: object) -> list:
    with services.db.session(TENANT) as s:
        person = s.get(Person, person_id)
        ctx = Ctx.for_person(services, s, s.get(Workspace, TENANT), person)
        return notif.notify(ctx, person, key, params=kw.pop("params", {}), **kw)  # type: ignore[arg-type]


def _flush(bot: Bot) -> list[Outbound]:
    job = next(j for j in bot.registry.jobs if j.name == "notifications.flush")
    return [e for e in bot.run_job(job) if isinstance(e, Outbound)]


def test_pings_are_grouped_into_one_dm_after_the_window(bot: Bot, services: Services, clock) -> None:
    alice = _person(services, "alice")
    assert _notify(services, alice, "notifications.grouped", params={"count": 1}, thread_key="t1") == []
    clock.advance(timedelta(minutes=1))
    assert _notify(services, alice, "notifications.more", params={"count": 7}, thread_key="t2") == []
    clock.advance(timedelta(minutes=2))
    assert _flush(bot) == []  # oldest ping waited 3 of 5 minutes
    clock.advance(timedelta(minutes=2))
    sent = _flush(bot)
    assert len(sent) == 1 and sent[0].reply.key == "notifications.grouped" and sent[0].reply.params == {"count": 2}
    assert isinstance(sent[0].to, UserRef) and sent[0].to.id == "alice"
    assert "7 more" in sent[0].reply.text
    clock.advance(timedelta(minutes=10))
    assert _flush(bot) == []


def test_same_thread_pings_once_ever(bot: Bot, services: Services, clock) -> None:
    alice = _person(services, "alice")
    _notify(services, alice, params={}, thread_key="idea:1")
    _notify(services, alice, params={}, thread_key="idea:1")
    clock.advance(timedelta(minutes=6))
    sent = _flush(bot)
    assert [e.reply.key for e in sent] == ["notifications.single_title"]
    _notify(services, alice, params={}, thread_key="idea:1")
    clock.advance(timedelta(minutes=6))
    assert _flush(bot) == []


def test_quiet_hours_hold_pings_until_morning_in_the_persons_zone(bot: Bot, services: Services, clock) -> None:
    clock.set(clock.now().replace(hour=19, minute=30))  # 20:30 in Paris, 14:30 in Montréal
    paris = _person(services, "paris")
    montreal = _person(services, "montreal", tz="America/Montreal")
    _notify(services, paris, params={}, thread_key="a")
    _notify(services, montreal, params={}, thread_key="a")
    clock.advance(timedelta(minutes=6))
    assert [e.to.id for e in _flush(bot)] == ["montreal"]
    clock.advance(timedelta(hours=5))
    assert _flush(bot) == []
    clock.set(clock.now().replace(hour=7, minute=1) + timedelta(days=1))  # 08:01 in Paris
    assert [e.to.id for e in _flush(bot)] == ["paris"]


def test_daily_cap_drops_the_rest_and_counts_urgent_pings(bot: Bot, services: Services, clock) -> None:
    alice = _person(services, "alice")
    with services.db.session(TENANT) as s:
        queue.settings_for_update(s, alice).daily_cap = 3
    urgent = _notify(services, alice, "notifications.grouped", params={"count": 9}, urgent=True,
                     actions=(Action("notifications.single_title", "feed"),))
    assert len(urgent) == 1 and urgent[0].reply.key == "notifications.grouped"
    assert urgent[0].reply.card is not None and urgent[0].reply.card.actions[0].label == "For you"
    for i in range(4):
        _notify(services, alice, params={}, thread_key=f"x{i}")
    clock.advance(timedelta(minutes=6))
    sent = _flush(bot)
    assert len(sent) == 1 and sent[0].reply.params == {"count": 2}
    with services.db.session(TENANT) as s:
        assert queue.sent_since(s, alice, clock.now() - timedelta(hours=1)) == 3
    _notify(services, alice, params={}, thread_key="late")
    clock.advance(timedelta(minutes=6))
    assert _flush(bot) == []


def test_snooze_command_holds_pings_and_off_releases_them(bot: Bot, services: Services, clock) -> None:
    alice = _person(services, "alice")

    say = partial(driver.say, bot, "alice", "dm", tenant=TENANT, via="message", mark_mentions=False)

    assert [e.reply.key for e in say("snooze 2h")] == ["notifications.snooze_set"]
    _notify(services, alice, params={}, thread_key="s1")
    clock.advance(timedelta(minutes=30))
    assert _flush(bot) == []
    assert [e.reply.key for e in say("snooze off")] == ["notifications.snooze_off"]
    clock.advance(timedelta(minutes=1))
    assert len(_flush(bot)) == 1
    assert [e.reply.key for e in say("snooze whenever")] == ["notifications.bad_snooze"]
    assert [e.reply.key for e in say("snooze until monday")] == ["notifications.snooze_set"]
    assert "Mon 30 Nov 00:00" in say("notifications")[0].reply.text
    assert [e.reply.key for e in say("notifications cap 5")] == ["notifications.cap_set"]
    assert [e.reply.key for e in say("notifications cap lots")] == ["notifications.bad_cap"]
    assert [e.reply.key for e in say("quiet hours 21:00-07:30")] == ["notifications.quiet_set"]
    assert [e.reply.key for e in say("quiet hours 25:00-07:30")] == ["notifications.bad_quiet"]
    shown = say("notifications")[0].reply
    assert shown.params["cap"] == 5 and shown.params["quiet"] == "21:00-07:30"


def test_a_second_worker_cannot_claim_what_the_first_took(bot: Bot, services: Services, clock) -> None:
    alice = _person(services, "alice")
    _notify(services, alice, params={}, thread_key="r1")
    clock.advance(timedelta(minutes=6))
    slow = services.db.new_session(ALL_TENANTS)
    try:
        assert queue.people_with_due(slow, clock.now(), timedelta(minutes=5)) == [alice]
        slow.commit()
        assert len(_flush(bot)) == 1  # the other worker got there first
        assert queue.claim_pending(slow, alice) == []
    finally:
        slow.close()


@pytest.mark.parametrize("spec,local,expected", [
    ("20:00-08:00", "21:00", True), ("20:00-08:00", "07:59", True), ("20:00-08:00", "08:00", False),
    ("12:00-14:00", "13:00", True), ("12:00-14:00", "14:30", False), ("off", "23:00", False),
])
def test_quiet_window(spec: str, local: str, expected: bool, clock) -> None:
    h, m = map(int, local.split(":"))
    assert notif.in_quiet_hours(clock.now().replace(hour=h, minute=m), spec) is expected
