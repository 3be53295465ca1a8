"""The digest engine with a fixed clock: exactly once, empty periods, crashes, grace, privacy."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.clock import FixedClock
from bot.context import Services
from bot.core import Bot
from handlers.digests import engine
from handlers.digests.content import Sources
from bot.registry import Job
from bot.types import Effect, Outbound
from store.models.digests import DigestDelivery, DigestRun
from tests.digest_worker import TENANT, Org, add_digest, add_message, seed_org

# The fixture clock starts Monday 2026-11-23 09:00 UTC (10:00 in Paris): the next weekly
# Monday 09:00 Paris digest is due 2026-11-30 08:00 UTC and covers the week before it.
DUE = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def org(services: Services) -> Org:
    return seed_org(services.db)


def job(services: Services) -> Job:
    return next(j for j in services.registry.jobs if j.name == "digests")


def tick_until(bot: Bot, clock: FixedClock, until: datetime, step: timedelta = timedelta(minutes=5)) -> list[Effect]:
    effects: list[Effect] = []
    while clock.now() < until:
        clock.advance(step)
        effects += bot.run_job(job(bot.services))
    return effects


def posts(effects: list[Effect]) -> list[Outbound]:
    return [e for e in effects if isinstance(e, Outbound)]


def test_weekly_digest_is_posted_once_with_its_sections(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "Nouvel appel d'offres Airbus, qui a déjà répondu ?",
                clock.now() + timedelta(days=1), replies=6, reactions=3)
    add_message(services.db, org, "sales", "thomas", "Grille tarifaire 2026 publiée", clock.now() + timedelta(days=2), replies=1)
    add_message(services.db, org, "engineering", "lucas", "Kubernetes upgrade done", clock.now() + timedelta(days=2), replies=9)
    with services.db.session(TENANT) as s:  # emma joins #sales mid-week
        from store.models.core import ConversationMember
        s.add(ConversationMember(conversation_id=org.channels["sales"], person_id=org.people["emma"],
                                 joined_at=clock.now() + timedelta(days=3)))
    assert posts(tick_until(bot, clock, DUE - timedelta(minutes=5))) == []
    out = posts(tick_until(bot, clock, DUE + timedelta(days=1)))
    assert len(out) == 1
    post = out[0]
    assert post.reply.key == "digest.post" and post.to.id == "sales" and post.anchor == f"digest:1:2026-11-30T09:00"
    card = post.reply.card
    assert card is not None and card.title == "Cette semaine dans #sales"  # the channel's language
    headings = [h for h, _ in card.sections]
    assert headings == ["Les plus discutés", "Bienvenue aux nouveaux venus"]
    discussions = card.sections[0][1].splitlines()
    assert "Airbus" in discussions[0] and "6 réponses" in discussions[0] and "console://sales/" in discussions[0]
    assert "Kubernetes" not in card.sections[0][1]  # another channel
    assert "Emma Durand — négociation" in card.sections[1][1]
    assert card.body == "2 personnes ont contribué cette semaine : 20 % du canal."
    # Another week with nothing new: no post.
    assert posts(tick_until(bot, clock, DUE + timedelta(days=8))) == []
    with services.db.session(TENANT) as s:
        runs = [(r.period_key, r.status) for r in s.scalars(select(DigestRun).order_by(DigestRun.id))]
    assert runs == [("2026-11-30T09:00", "queued"), ("2026-12-07T09:00", "empty")]


def test_empty_period_posts_nothing(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "old news", clock.now() - timedelta(days=10), replies=5)
    assert posts(tick_until(bot, clock, DUE + timedelta(hours=1))) == []


def test_private_channel_content_never_reaches_a_public_digest(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    # Even named as a source (the command refuses it; here it is forced into the row).
    add_digest(services.db, org, clock.now(), sources=Sources(channels=(org.channels["direction"],), hashtags=("reorg",)))
    add_message(services.db, org, "direction", "camille", "Confidentiel : réorganisation #reorg", clock.now() + timedelta(days=1), replies=20)
    add_message(services.db, org, "sales", "sophie", "Point pipeline", clock.now() + timedelta(days=1))
    out = posts(tick_until(bot, clock, DUE + timedelta(minutes=10)))
    assert len(out) == 1
    text = str(out[0].reply.card)
    assert "Point pipeline" in text and "Confidentiel" not in text and "réorganisation" not in text


def test_two_ticks_of_one_period_claim_it_once(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    digest_id = add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(days=1))
    clock.set(DUE + timedelta(minutes=1))
    assert engine.claim_due(services, digest_id, TENANT, clock.now()) == "queued"
    # A second process that read the schedule before the first moved it on:
    from store.models.digests import Digest
    with services.db.session(TENANT) as s:
        s.get(Digest, digest_id).next_run_at = DUE  # type: ignore[union-attr]
    assert engine.claim_due(services, digest_id, TENANT, clock.now()) == "taken"
    assert len(posts(bot.run_job(job(services)))) == 1
    assert posts(bot.run_job(job(services))) == []


def test_restart_in_the_middle_of_a_delivery_posts_once(services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(days=1))
    delivered: list[Outbound] = []

    def crash(effects: object) -> None:
        raise RuntimeError("process killed while posting")

    services.deliver = crash
    clock.set(DUE + timedelta(minutes=1))
    Bot(services).run_job(job(services))
    with services.db.session(TENANT) as s:
        row = s.scalar(select(DigestDelivery))
        assert row is not None and (row.status, row.attempts) == ("sending", 1)
    # "Restart": a new bot with a working adapter. The interrupted delivery waits for its lease.
    services.deliver = lambda effects: delivered.extend(e for e in effects if isinstance(e, Outbound))
    restarted = Bot(services)
    clock.advance(timedelta(minutes=5))
    restarted.run_job(job(services))
    assert delivered == []
    clock.advance(engine.LEASE)
    restarted.run_job(job(services))
    restarted.run_job(job(services))
    clock.advance(engine.LEASE * 2)
    restarted.run_job(job(services))
    assert len(delivered) == 1 and delivered[0].anchor == "digest:1:2026-11-30T09:00"
    with services.db.session(TENANT) as s:
        assert [r.status for r in s.scalars(select(DigestDelivery))] == ["sent"]
        assert len(list(s.scalars(select(DigestRun)))) == 1


def test_crash_after_claim_before_commit_leaves_the_period_to_the_next_tick(services: Services, clock: FixedClock, org: Org,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    digest_id = add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(days=1))
    clock.set(DUE + timedelta(minutes=1))
    real = engine.compose

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("died while building")

    monkeypatch.setattr(engine, "compose", broken)
    with pytest.raises(RuntimeError):
        engine.claim_due(services, digest_id, TENANT, clock.now())
    monkeypatch.setattr(engine, "compose", real)
    assert engine.claim_due(services, digest_id, TENANT, clock.now()) == "queued"


def test_missed_runs_are_caught_up_within_the_grace_window(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(days=1))
    clock.set(DUE + timedelta(hours=5))  # down from Sunday to 14:00: within 6 h
    assert len(posts(bot.run_job(job(services)))) == 1


def test_missed_runs_beyond_the_grace_window_are_skipped_with_a_log_line(
        bot: Bot, services: Services, clock: FixedClock, org: Org, caplog: pytest.LogCaptureFixture) -> None:
    digest_id = add_digest(services.db, org, clock.now(), frequency="daily", cron="0 9 * * *")
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(hours=1))
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=timezone.utc))  # three daily runs missed, the last by 8 h
    with caplog.at_level(logging.INFO, logger="handlers.digests.engine"):
        assert posts(bot.run_job(job(services))) == []
    assert "missed by more than 6:00:00, skipped" in caplog.text
    from store.models.digests import Digest
    with services.db.session(TENANT) as s:
        assert s.get(Digest, digest_id).next_run_at == datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)  # type: ignore[union-attr]


def test_several_missed_runs_within_grace_post_only_the_latest(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now(), frequency="cron", cron="0 * * * *")
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(minutes=1))
    clock.set(clock.now() + timedelta(hours=3, minutes=30))
    out = posts(bot.run_job(job(services)))
    assert len(out) == 1 and out[0].anchor == "digest:1:2026-11-23T13:00"


def test_paused_digest_is_not_posted(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    digest_id = add_digest(services.db, org, clock.now())
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(days=1))
    from store.models.digests import Digest
    with services.db.session(TENANT) as s:
        s.get(Digest, digest_id).status = "paused"  # type: ignore[union-attr]
    assert posts(tick_until(bot, clock, DUE + timedelta(minutes=30))) == []


def test_deliveries_are_paced_one_per_channel_per_tick(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now())
    add_digest(services.db, org, clock.now())  # a second digest of the same channel at the same minute
    add_message(services.db, org, "sales", "sophie", "hello", clock.now() + timedelta(days=1))
    clock.set(DUE + timedelta(minutes=1))
    first = posts(bot.run_job(job(services)))
    second = posts(bot.run_job(job(services)))
    assert (len(first), len(second)) == (1, 1)


def test_personal_digest_only_from_readable_conversations(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    from store.models.social import MessageMention
    add_digest(services.db, org, clock.now(), channel=None, person="thomas", frequency="daily", cron="30 8 * * *")
    seen_id = add_message(services.db, org, "engineering", "lucas", "⟦@thomas⟧ can you review?", clock.now() + timedelta(hours=2))
    hidden_id = add_message(services.db, org, "direction", "camille", "Thomas's position is changing", clock.now() + timedelta(hours=2))
    with services.db.session(TENANT) as s:
        for mid in (seen_id, hidden_id):
            s.add(MessageMention(message_id=mid, person_id=org.people["thomas"]))
    out = posts(tick_until(bot, clock, datetime(2026, 11, 24, 7, 40, tzinfo=timezone.utc)))
    assert len(out) == 1
    post = out[0]
    assert post.reply.key == "digest.personal" and post.to.id == "thomas" and type(post.to).__name__ == "UserRef"
    body = "\n".join(b for _, b in post.reply.card.sections)  # type: ignore[union-attr]
    assert "@thomas can you review?" in body and "position" not in body
    assert post.reply.card.title == "For you, Thomas Robert: today"  # type: ignore[union-attr]
