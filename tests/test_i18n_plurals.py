"""Counts, numbers and dates as people read them in English and French: `1 follower`,
`2 abonnés`, `2 862 octets`, `lun. 7 déc. 00:00`, never `1 followers` nor English dates in French."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core import Bot
from bot.i18n import Prompts
from tests.test_ideas_support import Driver, everything

NNBSP = "\u202f"  # CLDR's French group separator (narrow no-break space)


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def test_follower_counts_agree_with_their_noun_in_both_languages(d: Driver) -> None:
    asked = {"james": [], "thomas": []}  # james reads English, thomas French
    for follower in (None, "emma", "hugo"):
        if follower:
            d.say(follower, "dm", "follow @lucas")
        for who, seen in asked.items():
            seen.append(everything(d.say(who, "dm", "followers @lucas")))
    assert asked["james"] == ["Nobody follows Lucas Petit yet.", "Lucas Petit has 1 follower.",
                              "Lucas Petit has 2 followers."]
    assert asked["thomas"] == ["Personne ne suit encore Lucas Petit.", "Lucas Petit a 1 abonné.",
                               "Lucas Petit a 2 abonnés."]


@pytest.mark.parametrize("lang, counts", [
    ("en", ["0 people contributed this week.", "1 person contributed this week.", "2 people contributed this week."]),
    ("fr", ["0 personne a contribué cette semaine.", "1 personne a contribué cette semaine.",
            "2 personnes ont contribué cette semaine."]),
])
def test_zero_one_and_two_follow_each_language_s_rule(prompts: Prompts, lang: str, counts: list[str]) -> None:
    period = prompts.t(lang, "digest.period.weekly")
    assert [prompts.t(lang, "digest.participation_no_members", count=n, period=period) for n in (0, 1, 2)] == counts


def test_a_sentence_with_two_counts_chooses_each_noun_and_groups_digits(prompts: Prompts) -> None:
    assert prompts.t("en", "privacy.exported", messages=1, size=2862).endswith("(1 message, 2,862 bytes).")
    assert prompts.t("en", "privacy.exported", messages=2, size=1).endswith("(2 messages, 1 byte).")
    assert prompts.t("fr", "privacy.exported", messages=1, size=2862).endswith(f"(1 message, 2{NNBSP}862 octets).")
    assert prompts.t("fr", "privacy.exported", messages=0, size=0).endswith("(0 message, 0 octet).")


def test_french_millions_take_de(prompts: Prompts) -> None:
    assert prompts.t("fr", "topic.card", tag="#prix", followers=1_000_000) == f"À propos de #prix : 1{NNBSP}000{NNBSP}000 d'abonnés."
    assert prompts.t("en", "topic.card", tag="#pricing", followers=1_000_000) == "About #pricing: 1,000,000 followers."


def test_durations_and_fractions(prompts: Prompts) -> None:
    assert [prompts.t("en", "people.ago.weeks", n=n) for n in (1, 3)] == ["1 week ago", "3 weeks ago"]
    assert [prompts.t("fr", "people.ago.years", n=n) for n in (1, 3)] == ["il y a 1 an", "il y a 3 ans"]
    half = {lang: prompts.t(lang, "help_requests.channel_on", channel="#support", hours=0.5) for lang in ("en", "fr")}
    assert half["en"].endswith("after 0.5 working hours.") and half["fr"].endswith("après 0,5 heure ouvrée.")


def test_identifiers_are_not_grouped_but_counts_are(prompts: Prompts) -> None:
    assert prompts.t("en", "idea.voted", id=1234, votes=1) == "Your vote for idea #1234 is counted: 1 vote now."
    assert prompts.t("fr", "idea.voted", id=1234, votes=1500) == (
        f"Votre vote pour l'idée #1234 est compté : 1{NNBSP}500 votes maintenant.")


def test_dates_and_times_are_written_in_the_reader_s_language(prompts: Prompts) -> None:
    midnight = datetime(2026, 12, 7, 0, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert prompts.t("en", "notifications.snoozed_until", when=midnight) == "snoozed until Mon 7 Dec 00:00"
    assert prompts.t("fr", "notifications.snoozed_until", when=midnight) == "en pause jusqu'au lun. 7 déc. 00:00"
    # the caller converts to the reader's zone; the prompt shows the value's own wall clock
    assert prompts.t("en", "notifications.snoozed_until", when=midnight.astimezone(timezone.utc)) == "snoozed until Sun 6 Dec 23:00"
    since = date(2026, 11, 2)
    assert "last confirmed on Mon 2 Nov 2026." in prompts.t("en", "fresh.still_true", skill="SEO", since=since)
    assert "Dernière confirmation le lun. 2 nov. 2026." in prompts.t("fr", "fresh.still_true", skill="SEO", since=since)


def test_plain_strings_stay_as_they_are(prompts: Prompts) -> None:
    assert prompts.t("fr", "notifications.snoozed_until", when="demain 9h") == "en pause jusqu'au demain 9h"
    assert prompts.t("en", "social.followers_count", name="Lucas", count="3") == "Lucas has 3 followers."


def _catalogue(tmp_path: Path, en: str, fr: str) -> Path:
    for lang, text in (("en", en), ("fr", fr)):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "x.yaml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("en, problem", [
    ('a: "{n:d} items"', "format spec"),
    ('a:\n  one: "{count} item"', "need `other`"),
    ('a:\n  single: "{count} item"\n  other: "{count} items"', "not a plural category"),
    ('a:\n  text: "({n})"\n  m:\n    one: "{m} item"\n    other: "{m} items"', "has no {m}"),
])
def test_a_malformed_catalogue_is_refused_at_load(tmp_path: Path, en: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Prompts.load(_catalogue(tmp_path, en, 'a: "x"'))
