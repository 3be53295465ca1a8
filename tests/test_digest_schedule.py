"""Schedules as people type them, and occurrences across daylight-saving changes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FixedClock
from bot.context import Services, UserError
from bot.core import Bot
from handlers.digests.cron import Cron, CronError, next_after, period_key, previous_wall
from handlers.digests.parse import parse_schedule
from bot.types import Outbound
from tests.digest_worker import add_digest, add_message, seed_org

PARIS, MONTREAL = ZoneInfo("Europe/Paris"), ZoneInfo("America/Montreal")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, frequency, cron, tz, sections", [
    ("weekly monday 09:00 Europe/Paris", "weekly", "0 9 * * 1", "Europe/Paris", ()),
    ("chaque lundi 9h", "weekly", "0 9 * * 1", None, ()),
    ("quotidien 18h30", "daily", "30 18 * * *", None, ()),
    ("tous les jours à 8h30", "daily", "30 8 * * *", None, ()),
    ("daily 8am UTC", "daily", "0 8 * * *", "UTC", ()),
    ("mensuel le 1er 9h", "monthly", "0 9 1 * *", None, ()),
    ("monthly on day 15 at 10:30", "monthly", "30 10 15 * *", None, ()),
    ('cron "0 9 * * 1-5"', "cron", "0 9 * * 1-5", None, ()),
    ("cron “30 7 * * mon”", "cron", "30 7 * * mon", None, ()),
    ("hebdomadaire vendredi 17h idées aide nouveaux arrivants", "weekly", "0 17 * * 5", None, ("ideas", "help", "newcomers")),
    ("weekly friday 5pm sources ideas help requests kudos", "weekly", "0 17 * * 5", None, ("ideas", "help", "kudos")),
])
def test_schedules_in_english_and_french(text: str, frequency: str, cron: str, tz: str | None, sections: tuple[str, ...]) -> None:
    request = parse_schedule(text)
    assert (request.schedule.frequency, request.schedule.cron, request.schedule.tz) == (frequency, cron, tz)
    assert request.sections == sections and request.words == ()


@pytest.mark.parametrize("text, key", [
    ("weekly 25:00", "digest.bad_time"),
    ("every so often", "digest.missing_frequency"),
    ("weekly monday 9h Mars/Olympus", "digest.bad_tz"),
    ('cron "0 9 * *"', "digest.bad_cron"),
    ('cron "61 9 * * *"', "digest.bad_cron"),
    ("mensuel le 31", "digest.bad_day"),
])
def test_bad_schedules_are_refused_with_a_reason(text: str, key: str) -> None:
    with pytest.raises(UserError) as err:
        parse_schedule(text)
    assert err.value.key == key


def test_unknown_words_are_reported_not_ignored() -> None:
    assert parse_schedule("weekly monday 9h blorp").words == ("blorp",)


def test_cron_uses_cron_day_numbers() -> None:
    # APScheduler 3's from_crontab reads 1 as Tuesday; ours follows cron: 1 = Monday, 0 and 7 = Sunday.
    assert next_after(Cron.parse("0 9 * * 1"), utc(2026, 11, 23, 9), PARIS) == utc(2026, 11, 30, 8)
    assert next_after(Cron.parse("0 9 * * 7"), utc(2026, 11, 23, 9), PARIS) == utc(2026, 11, 29, 8)
    assert next_after(Cron.parse("0 12 1,15 * *"), utc(2026, 11, 23, 9), ZoneInfo("UTC")) == utc(2026, 12, 1, 12)
    with pytest.raises(CronError):
        Cron.parse("0 9 * * 8")


def occurrences(cron: str, tz: ZoneInfo, start: datetime, n: int) -> list[datetime]:
    out, when = [], start
    for _ in range(n):
        when = next_after(Cron.parse(cron), when, tz)  # type: ignore[assignment]
        out.append(when)
    return out


def test_paris_spring_forward_2026_03_29() -> None:
    # Weekly Monday 09:00 stays 09:00 local: 08:00 UTC before the change, 07:00 UTC after.
    assert occurrences("0 9 * * 1", PARIS, utc(2026, 3, 20), 2) == [utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)]
    # 02:30 does not exist on the 29th: it runs once, an hour later on the wall clock.
    daily = occurrences("30 2 * * *", PARIS, utc(2026, 3, 28, 12), 3)
    assert daily == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]
    assert [period_key(d, PARIS) for d in daily] == ["2026-03-29T03:30", "2026-03-30T02:30", "2026-03-31T02:30"]


def test_paris_fall_back_2026_10_25() -> None:
    # 02:30 happens twice on the 25th: one run, at the first.
    daily = occurrences("30 2 * * *", PARIS, utc(2026, 10, 24, 12), 3)
    assert daily == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)]
    assert occurrences("0 9 * * 1", PARIS, utc(2026, 10, 20), 2) == [utc(2026, 10, 26, 8), utc(2026, 11, 2, 8)]


def test_montreal_2026_03_08_and_11_01() -> None:
    assert occurrences("30 2 * * *", MONTREAL, utc(2026, 3, 7, 12), 2) == [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]
    assert occurrences("30 1 * * *", MONTREAL, utc(2026, 10, 31, 12), 2) == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert occurrences("30 8 * * *", MONTREAL, utc(2026, 10, 31, 20), 2) == [utc(2026, 11, 1, 13, 30), utc(2026, 11, 2, 13, 30)]


def test_a_week_across_the_change_is_seven_local_days() -> None:
    end = utc(2026, 3, 30, 7)  # Monday 09:00 CEST
    assert previous_wall("weekly", end, PARIS, None) == utc(2026, 3, 23, 8)  # Monday 09:00 CET
    assert previous_wall("monthly", utc(2026, 3, 31, 7), PARIS, None) == utc(2026, 2, 28, 8)
    assert previous_wall("daily", utc(2026, 11, 1, 13, 30), MONTREAL, None) == utc(2026, 10, 31, 12, 30)


def test_fall_back_night_posts_a_daily_digest_once(bot: Bot, services: Services, clock: FixedClock) -> None:
    """The fixed clock walks through the repeated hour in 5-minute ticks."""
    org = seed_org(services.db)
    clock.set(utc(2026, 10, 24, 12))
    add_digest(services.db, org, clock.now(), frequency="daily", cron="30 2 * * *")
    for hours in (2, 10, 13, 14):
        add_message(services.db, org, "sales", "sophie", f"message {hours}", clock.now() + timedelta(hours=hours))
    job = next(j for j in services.registry.jobs if j.name == "digests")
    seen: list[Outbound] = []
    while clock.now() < utc(2026, 10, 25, 4):
        clock.advance(timedelta(minutes=5))
        seen += [e for e in bot.run_job(job) if isinstance(e, Outbound)]
    assert [o.anchor for o in seen] == ["digest:1:2026-10-25T02:30"]
    assert "message 10" in str(seen[0].reply.card)


def test_spring_forward_night_posts_once(bot: Bot, services: Services, clock: FixedClock) -> None:
    org = seed_org(services.db)
    clock.set(utc(2026, 3, 7, 12))
    add_digest(services.db, org, clock.now(), frequency="daily", cron="30 2 * * *", tz="America/Montreal")
    add_message(services.db, org, "sales", "sophie", "bonjour", clock.now() + timedelta(hours=10))
    job = next(j for j in services.registry.jobs if j.name == "digests")
    seen: list[Outbound] = []
    while clock.now() < utc(2026, 3, 8, 12):
        clock.advance(timedelta(minutes=5))
        seen += [e for e in bot.run_job(job) if isinstance(e, Outbound)]
    assert [o.anchor for o in seen] == ["digest:1:2026-03-08T03:30"]
