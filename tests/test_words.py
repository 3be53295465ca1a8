"""The words people type (bot/words.py): one parser for switches, weekdays, months, durations,
dates and time zones, in English and in French whatever the person's language; then the
commands that once each had their own list, played through the bot."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core import Bot
from handlers.digests.cron import Cron, cron_weekday, next_after, weekday_of_cron
from handlers.digests.parse import describe, parse_schedule
from bot.i18n import Prompts
from bot.words import (Vocabulary, parse_duration, parse_month, parse_switch, parse_time, parse_timezone,
                       parse_weekday, parse_when, vocabulary)
from store import help_requests as help_store
from store import notifications as queue
from store.models.core import Conversation, Person
from store.models.digests import Digest
from tests.test_ideas_support import Driver, everything, keys

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # Monday 10:00 in Paris


@pytest.fixture
def words(prompts: Prompts) -> Vocabulary:
    return vocabulary(prompts)


def when(text: str, words: Vocabulary, **kw: bool) -> datetime | None:
    return parse_when(text, NOW, PARIS, words, **kw)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


# Units ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("yes", True), ("ON", True), ("enable", True), ("Enabled", True), ("oui", True), ("Activer", True),
    ("activé", True), ("true", True), ("no", False), ("off", False), ("disable", False), ("non", False),
    ("désactiver", False), ("DESACTIVE", False), ("stop", False), ("aucun", False), ("fin", False),
    ("maybe", None), ("", None), ("on off", None),
])
def test_switch_words_of_both_languages(words: Vocabulary, text: str, value: bool | None) -> None:
    assert parse_switch(text, words) is value


def test_a_word_with_two_meanings_of_one_kind_is_refused_at_load() -> None:
    clash = Prompts({"en": {"words.yes": "yes|ok"}, "fr": {"words.no": "non|ok"}})
    with pytest.raises(ValueError, match="already means switch True"):
        Vocabulary.from_prompts(clash)


def test_one_weekday_numbering_monday_is_zero(words: Vocabulary) -> None:
    assert [parse_weekday(d, words) for d in ("lundi", "Monday", "mar", "mercredis", "thu", "Vendredi", "sam", "SUNDAY")] \
        == [0, 0, 1, 2, 3, 4, 5, 6]
    assert parse_weekday("someday", words) is None
    assert [cron_weekday(d) for d in range(7)] == [1, 2, 3, 4, 5, 6, 0]
    assert [weekday_of_cron(d) for d in (1, 0, 7)] == [0, 6, 6]
    # the digest schedule stores cron's numbers and describes them in the common one
    assert parse_schedule("chaque dimanche 9h").schedule.cron == "0 9 * * 0"
    assert describe("weekly", "0 9 * * 0")["weekday"] == 6 and describe("weekly", "0 9 * * 1")["weekday"] == 0
    assert next_after(Cron.parse("0 9 * * 1"), NOW, PARIS) == local(2026, 11, 30, 9)


def test_months_and_durations(words: Vocabulary) -> None:
    assert [parse_month(m, words) for m in ("décembre", "December", "dec", "Août", "févr", "mars", "may")] \
        == [12, 12, 12, 8, 2, 3, 5]
    assert parse_month("brumaire", words) is None
    cases = {"2h": timedelta(hours=2), "30 min": timedelta(minutes=30), "1h30": timedelta(hours=1, minutes=30),
             "3 jours": timedelta(days=3), "2 weeks": timedelta(weeks=2), "1 semaine": timedelta(weeks=1),
             "1.5 hours": timedelta(hours=1, minutes=30), "45m": timedelta(minutes=45), "2 heures": timedelta(hours=2)}
    assert {text: parse_duration(text, words) for text in cases} == cases
    assert [parse_duration(t, words) for t in ("0h", "soon", "3", "2 parsecs", "")] == [None] * 5


def test_times(words: Vocabulary) -> None:
    got = [parse_time(t, words) for t in ("9h", "9h30", "14:00", "9am", "9:30 pm", "12am", "9 du soir", "21h")]
    assert [(t.hour, t.minute) if t else None for t in got] == [(9, 0), (9, 30), (14, 0), (9, 0), (21, 30), (0, 0),
                                                             (21, 0), (21, 0)]
    assert [parse_time(t, words) for t in ("9", "25h", "13pm", "9h75")] == [None] * 4


def test_time_zones_are_matched_case_insensitively() -> None:
    assert parse_timezone("europe/paris") == "Europe/Paris"
    assert parse_timezone("EUROPE/PARIS") == "Europe/Paris"
    assert parse_timezone("america/new york") == "America/New_York"
    assert parse_timezone("utc") == "UTC"
    assert parse_timezone("Mars/Olympus") is None and parse_timezone("") is None


@pytest.mark.parametrize("text, expected", [
    ("2026-12-15", local(2026, 12, 15, 0, 0)),
    ("15/12", local(2026, 12, 15, 0, 0)),
    ("15/12/2026", local(2026, 12, 15, 0, 0)),
    ("15 décembre", local(2026, 12, 15, 0, 0)),
    ("15 Décembre 2027", local(2027, 12, 15, 0, 0)),
    ("December 15", local(2026, 12, 15, 0, 0)),
    ("december 15, 2027", local(2027, 12, 15, 0, 0)),
    ("the 1st of december", local(2026, 12, 1, 0, 0)),
    ("le 1er décembre", local(2026, 12, 1, 0, 0)),
    ("15 mars", local(2027, 3, 15, 0, 0)),  # already past this year: next year's
    ("lundi 9h", local(2026, 11, 30, 9, 0)),  # today is a Monday: the next one
    ("monday 9am", local(2026, 11, 30, 9, 0)),
    ("vendredi", local(2026, 11, 27, 0, 0)),
    ("next friday 5pm", local(2026, 11, 27, 17, 0)),
    ("tomorrow", local(2026, 11, 24, 0, 0)),
    ("demain 14h30", local(2026, 11, 24, 14, 30)),
    ("après-demain", local(2026, 11, 25, 0, 0)),
    ("in 3 days", local(2026, 11, 26, 10, 0)),
    ("dans 3 jours", local(2026, 11, 26, 10, 0)),
    ("dans 2h", local(2026, 11, 23, 12, 0)),
    ("14:00", local(2026, 11, 23, 14, 0)),
    ("9h", local(2026, 11, 24, 9, 0)),  # already past today: tomorrow's
    ("until monday", local(2026, 11, 30, 0, 0)),
    ("jusqu'au 15 décembre", local(2026, 12, 15, 0, 0)),
    ("jusqu’à jeudi 18h", local(2026, 11, 26, 18, 0)),
    ("until December 15", local(2026, 12, 15, 0, 0)),
])
def test_moments_in_english_and_french(words: Vocabulary, text: str, expected: datetime) -> None:
    assert when(text, words) == expected


def test_past_and_impossible_dates(words: Vocabulary) -> None:
    assert when("15/12/2025", words) == local(2025, 12, 15, 0, 0)  # returned as given: the command refuses it
    assert when("2026-11-01", words) is not None and when("2026-11-01", words) < NOW  # type: ignore[operator]
    assert [when(t, words) for t in ("31/02", "2026-13-01", "30 février", "someday", "lundi mardi", "")] == [None] * 6
    assert when("until 2026-12-01, holidays", words) is None
    assert when("until 2026-12-01, holidays", words, lenient=True) == local(2026, 12, 1, 0, 0)


# Commands, through the bot -----------------------------------------------------------------
@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def person(d: Driver, handle: str) -> Person:
    with d.session() as s:
        found = s.scalar(select(Person).where(Person.handle == handle))
        assert found is not None
        s.expunge(found)
        return found


def test_quiet_hours_accept_every_off_word(d: Driver) -> None:
    assert keys(d.say("emma", "dm", "heures calmes 22h-7h")) == ["notifications.quiet_set"]
    for text in ("heures calmes non", "quiet hours disable", "heures calmes désactiver", "notifications quiet aucun"):
        reply = d.say("emma", "dm", text)
        assert keys(reply) == ["notifications.quiet_cleared"], text
    emma = person(d, "emma")
    with d.session() as s:
        assert queue.settings_for_update(s, emma.id).quiet_hours == "off"
    assert keys(d.say("emma", "dm", "heures calmes peut-être")) == ["notifications.bad_quiet"]


def test_snooze_reads_the_same_dates_and_off_words(d: Driver) -> None:
    emma = person(d, "emma")
    assert keys(d.say("emma", "dm", "pause jusqu'au 1er décembre")) == ["notifications.snooze_set"]
    with d.session() as s:
        until = queue.settings_for_update(s, emma.id).snooze_until
    assert until is not None and until.astimezone(ZoneInfo(emma.tz or "UTC")).date().isoformat() == "2026-12-01"
    assert keys(d.say("emma", "dm", "snooze for 2 hours")) == ["notifications.snooze_set"]
    assert keys(d.say("emma", "dm", "pause non")) == ["notifications.snooze_off"]
    assert keys(d.say("emma", "dm", "snooze disable")) == ["notifications.snooze_off"]
    assert keys(d.say("emma", "dm", "snooze until 2025-01-01")) == ["notifications.bad_snooze"]  # past
    assert keys(d.say("emma", "dm", "pause 3 mois")) == ["notifications.bad_snooze"]


def test_away_until_a_french_date(d: Driver) -> None:
    hugo = person(d, "hugo")
    reply = d.say("hugo", "dm", "absent jusqu'au 15 décembre")
    assert keys(reply) == ["help_requests.away_set"] and "jusqu'au mar. 15 déc. 2026." in everything(reply)
    with d.session() as s:
        until = help_store.away_until(s, hugo.id, d.clock.now())
    assert until is not None and until.astimezone(ZoneInfo(hugo.tz or "UTC")) == datetime(2026, 12, 15, tzinfo=ZoneInfo(hugo.tz or "UTC"))
    for text in ("away until December 20", "away until 2026-12-01", "absent jusqu'au 20/12/2026 (vacances)",
                 "away in 2 weeks", "absent lundi"):
        assert keys(d.say("hugo", "dm", text)) == ["help_requests.away_set"], text


def test_away_refuses_past_far_and_unreadable_dates(d: Driver) -> None:
    assert keys(d.say("hugo", "dm", "away until 2025-12-15")) == ["help_requests.away_past"]
    assert keys(d.say("hugo", "dm", "absent jusqu'au 15/12/2025")) == ["help_requests.away_past"]
    assert keys(d.say("hugo", "dm", "away until 2030-01-01")) == ["help_requests.away_too_far"]
    assert keys(d.say("hugo", "dm", "absent jusqu'à la saint-glinglin")) == ["help_requests.away_date"]
    with d.session() as s:
        assert help_store.away_ids(s, d.clock.now()) == set()


def test_privacy_takes_enable_and_disable(d: Driver) -> None:
    assert keys(d.say("thomas", "dm", "privacy me disable")) == ["privacy.me_off"]
    assert keys(d.say("thomas", "dm", "privacy me enable")) == ["privacy.me_on"]
    assert keys(d.say("julien", "#sales", "confidentialité canal désactiver")) == ["privacy.channel_set_off"]
    assert keys(d.say("julien", "#sales", "privacy channel enable")) == ["privacy.channel_set_on"]
    with d.session() as s:
        sales = s.scalar(select(Conversation).where(Conversation.name == "sales"))
        assert sales is not None and sales.indexing
    assert keys(d.say("thomas", "dm", "privacy me perhaps")) == ["privacy.usage_error"]


def test_help_channel_and_mentions_take_the_same_words(d: Driver) -> None:
    assert keys(d.say("camille", "#sales", "help channel #sales enable 4")) == ["help_requests.channel_on"]
    assert keys(d.say("camille", "#sales", "canal d'aide #sales désactivé")) == ["help_requests.channel_off"]
    assert keys(d.say("thomas", "dm", "profile set mentions disable")) == ["profile.set.mentions_off"]
    assert keys(d.say("thomas", "dm", "profil set mentions oui")) == ["profile.set.mentions_on"]


def test_time_zones_everywhere_case_insensitive(d: Driver) -> None:
    assert "Europe/Paris" in everything(d.say("thomas", "dm", "profile set tz europe/paris"))
    reply = d.say("julien", "#sales", "digest planifier chaque lundi 9h europe/paris")
    assert keys(reply) == ["digest.scheduled"] and "Europe/Paris" in everything(reply)
    assert keys(d.say("thomas", "dm", "digest me weekly friday 17h AMERICA/MONTREAL")) == ["digest.me_set"]
    with d.session() as s:
        zones = sorted(s.scalars(select(Digest.tz)))
    assert zones == ["America/Montreal", "Europe/Paris"]
    assert keys(d.say("julien", "#sales", "digest planifier quotidien 9h mars/olympus")) == ["digest.bad_tz"]


def test_a_weekly_digest_is_described_on_its_own_day(d: Driver) -> None:
    reply = d.say("julien", "#sales", "digest schedule weekly sunday 9am")
    assert keys(reply) == ["digest.scheduled"]
    text = everything(reply)
    assert "dimanche" in text or "Sunday" in text
    assert "lundi" not in text and "Monday" not in text
    assert keys(d.say("thomas", "dm", "digest me weekly monday 8h")) == ["digest.me_set"]
    assert keys(d.say("thomas", "dm", "digest me désactiver")) == ["digest.me_off"]
    assert keys(d.say("thomas", "dm", "digest me non")) == ["digest.me_none"]
