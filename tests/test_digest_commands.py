"""The digest commands through Bot.handle: who may, what is stored, what is answered."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

import pytest
from sqlalchemy import select

from bot.clock import FixedClock
from bot.context import Services
from bot.core import Bot
from bot.types import Outbound
from store.models.digests import Digest, DigestRun
from tests.digest_worker import TENANT, Org, add_message, seed_org
from tests.harness import driver


@pytest.fixture
def org(services: Services) -> Org:
    return seed_org(services.db)


# A slash command typed as is by `user` in channel `where` (#direction is private) or "dm".
say = partial(driver.say, tenant=TENANT, mark_mentions=False)


def keys(out: list[Outbound]) -> list[str]:
    return [o.reply.key for o in out]


def digests(services: Services) -> list[Digest]:
    with services.db.session(TENANT) as s:
        return list(s.scalars(select(Digest).order_by(Digest.id)))


def test_animator_schedules_a_weekly_digest(bot: Bot, services: Services, org: Org) -> None:
    out = say(bot, "julien", "sales", "digest schedule #sales weekly monday 09:00 Europe/Paris sources #engineering #pricing ideas kudos")
    assert keys(out) == ["digest.scheduled"]
    assert out[0].reply.private and "Prochain : lun. 30 nov. 09:00." in out[0].reply.text  # julien reads French
    [d] = digests(services)
    assert (d.kind, d.frequency, d.cron, d.tz, d.status) == ("channel", "weekly", "0 9 * * 1", "Europe/Paris", "active")
    assert d.next_run_at == datetime(2026, 11, 30, 8, tzinfo=timezone.utc)
    assert '"channels": [2]' in d.sources and '"hashtags": ["pricing"]' in d.sources and '"sections": ["ideas", "kudos"]' in d.sources


def test_french_form_and_channel_time_zone_default(bot: Bot, services: Services, org: Org) -> None:
    assert keys(say(bot, "julien", "sales", "digest planifier #sales chaque lundi 9h")) == ["digest.scheduled"]
    [d] = digests(services)
    assert (d.cron, d.tz) == ("0 9 * * 1", "Europe/Paris")  # the channel's time zone


def test_non_animator_is_refused_and_told_who_can(bot: Bot, services: Services, org: Org) -> None:
    out = say(bot, "thomas", "sales", "digest schedule #sales weekly monday 09:00")
    assert keys(out) == ["error.not_allowed"]
    assert "Julien Richard" in out[0].reply.text and "camille" in out[0].reply.text
    assert digests(services) == []
    assert keys(say(bot, "camille", "sales", "digest schedule #sales daily 08:00")) == ["digest.scheduled"]  # admin


def test_private_channels_cannot_have_or_feed_a_digest(bot: Bot, services: Services, org: Org) -> None:
    assert keys(say(bot, "camille", "direction", "digest schedule #direction weekly monday 9h")) == ["digest.not_public"]
    assert keys(say(bot, "camille", "sales", "digest schedule #sales weekly monday 9h sources #direction")) == ["digest.source_private"]
    assert digests(services) == []


@pytest.mark.parametrize("args, key", [
    ("#sales weekly 27:00", "digest.bad_time"),
    ("#sales weekly monday 9h Nowhere/City", "digest.bad_tz"),
    ("#sales sometimes", "digest.missing_frequency"),
    ("#sales weekly monday 9h gibberish", "digest.unknown_words"),
    ("#nowhere weekly monday 9h", "error.unknown_channel"),
])
def test_bad_input_is_refused_without_writing(bot: Bot, services: Services, org: Org, args: str, key: str) -> None:
    assert keys(say(bot, "julien", "sales", f"digest schedule {args}")) == [key]
    assert digests(services) == []


def test_list_pause_resume_delete(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    say(bot, "julien", "sales", "digest schedule #sales weekly monday 9h")
    out = say(bot, "thomas", "engineering", "digest list")
    assert keys(out) == ["digest.list"] and "#sales" in out[0].reply.card.body  # type: ignore[union-attr]
    assert keys(say(bot, "thomas", "sales", "digest pause 1")) == ["error.not_allowed"]
    assert keys(say(bot, "julien", "sales", "digest pause 1")) == ["digest.paused"]
    assert digests(services)[0].status == "paused"
    clock.advance(timedelta(days=10))
    assert keys(say(bot, "julien", "sales", "digest reprendre 1")) == ["digest.resumed"]
    d = digests(services)[0]
    assert d.status == "active" and d.next_run_at == datetime(2026, 12, 7, 8, tzinfo=timezone.utc)
    assert keys(say(bot, "julien", "sales", "digest delete 7")) == ["digest.not_found"]
    assert keys(say(bot, "julien", "sales", "digest delete one")) == ["digest.bad_id"]
    assert keys(say(bot, "julien", "sales", "digest supprimer 1")) == ["digest.deleted"]
    assert digests(services) == []


def test_preview_is_private_and_run_posts_once(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    assert keys(say(bot, "julien", "sales", "digest preview #sales")) == ["digest.preview_empty"]
    add_message(services.db, org, "sales", "sophie", "Appel d'offres Airbus", clock.now() - timedelta(days=1), replies=4)
    out = say(bot, "julien", "sales", "digest aperçu #sales")
    assert keys(out) == ["digest.preview"] and out[0].private_for is not None
    assert "Airbus" in str(out[0].reply.card)
    say(bot, "julien", "sales", "digest schedule #sales weekly monday 9h")
    out = say(bot, "julien", "sales", "digest run 1")
    assert keys(out) == ["digest.post", "digest.run_done"]
    assert out[0].to.id == "sales" and out[0].private_for is None and "Airbus" in str(out[0].reply.card)
    assert keys(say(bot, "julien", "sales", "digest run 1")) == ["digest.run_already"]  # same minute: a double click
    with services.db.session(TENANT) as s:
        assert [r.status for r in s.scalars(select(DigestRun))] == ["manual"]


def test_personal_digest_on_and_off(bot: Bot, services: Services, org: Org) -> None:
    out = say(bot, "lucas", "dm", "digest me daily 08:30")
    assert keys(out) == ["digest.me_set"]
    [d] = digests(services)
    assert (d.kind, d.cron, d.tz) == ("personal", "30 8 * * *", "America/Montreal")  # lucas's own time zone
    assert d.next_run_at == datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc)
    assert keys(say(bot, "lucas", "dm", "digest me weekly monday 07:00")) == ["digest.me_set"]
    assert [x.cron for x in digests(services)] == ["0 7 * * 1"]  # one personal digest, updated
    assert keys(say(bot, "lucas", "dm", "digest me monthly 9h")) == ["digest.me_frequency"]
    assert keys(say(bot, "lucas", "dm", "digest me off")) == ["digest.me_off"]
    assert keys(say(bot, "lucas", "dm", "digest moi arrêt")) == ["digest.me_none"]
    assert digests(services) == []
