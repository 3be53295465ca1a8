"""Digest content: ideas, help requests, kudos and follows; and the size of the worst case."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from bot.clock import FixedClock
from bot.context import Services
from handlers.digests.content import Content
from handlers.digests.render import render_channel
from handlers.digests.sources import Entry
from bot.i18n import Prompts
from bot.types import Outbound
from store.models.contribution import HelpRequest, Idea, IdeaVote, Kudos
from store.models.social import Follow, MessageTopic, Topic
from tests.digest_worker import TENANT, Org, add_digest, add_message, seed_org
from bot.core import Bot

DUE = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def org(services: Services) -> Org:
    return seed_org(services.db)


def run_until(bot: Bot, clock: FixedClock, until: datetime) -> list[Outbound]:
    job = next(j for j in bot.services.registry.jobs if j.name == "digests")
    out: list[Outbound] = []
    while clock.now() < until:
        clock.advance(timedelta(minutes=5))
        out += [e for e in bot.run_job(job) if isinstance(e, Outbound)]
    return out


def test_ideas_help_and_kudos_sections_from_public_channels_only(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now())
    p, c = org.people, org.channels
    day = clock.now() + timedelta(days=1)
    with services.db.session(TENANT) as s:
        old = Idea(number=1, title="Mutualiser les déplacements clients", author_id=p["sophie"], status="open",
                   conversation_id=c["sales"], source_permalink="console://sales/i1", vote_count=4,
                   created_at=clock.now() - timedelta(days=30), updated_at=day)
        s.add(old)
        s.add(Idea(number=2, title="Idée secrète", author_id=p["camille"], status="open", conversation_id=c["direction"],
                   vote_count=9, created_at=day, updated_at=day))
        s.add(Idea(number=3, title="Brouillon", author_id=p["thomas"], status="draft", conversation_id=c["sales"],
                   created_at=day, updated_at=day))
        s.flush()
        s.add(IdeaVote(idea_id=old.id, person_id=p["thomas"], created_at=day))  # rising this week
        s.add(HelpRequest(source_key="h1", number=1, asker_id=p["thomas"], question="Qui connaît le dossier Safran ?",
                          conversation_id=c["sales"], permalink="console://sales/h1", status="open", created_at=day))
        s.add(HelpRequest(source_key="h2", number=2, asker_id=p["sophie"], question="Déjà répondu", conversation_id=c["sales"],
                          status="resolved", created_at=day))
        s.add(HelpRequest(source_key="h3", number=3, asker_id=p["sophie"], question="Question privée",
                          conversation_id=c["direction"], status="open", created_at=day))
        s.add(Kudos(giver_id=p["julien"], recipient_id=p["sophie"], reason="pour le devis Airbus", conversation_id=c["sales"],
                    created_at=day))
        s.add(Kudos(giver_id=p["camille"], recipient_id=p["sophie"], reason="merci confidentiel", conversation_id=c["direction"],
                    created_at=day))
    [post] = run_until(bot, clock, DUE + timedelta(minutes=10))
    sections = dict(post.reply.card.sections)  # type: ignore[union-attr]
    assert list(sections) == ["Idées nouvelles et montantes", "Toujours sans réponse — pouvez-vous aider ?", "Remerciements"]
    assert sections["Idées nouvelles et montantes"] == "• #1 Mutualiser les déplacements clients — Sophie Martin (4 votes) → console://sales/i1"
    assert sections["Toujours sans réponse — pouvez-vous aider ?"] == "• Qui connaît le dossier Safran ? — Thomas Robert → console://sales/h1"
    assert sections["Remerciements"] == "• Julien Richard → Sophie Martin : pour le devis Airbus"
    assert "secrète" not in str(post) and "privée" not in str(post) and "confidentiel" not in str(post)


def test_personal_digest_follows_people_and_topics(bot: Bot, services: Services, clock: FixedClock, org: Org) -> None:
    add_digest(services.db, org, clock.now(), channel=None, person="emma", frequency="daily", cron="30 8 * * *", tz="Europe/London")
    later = clock.now() + timedelta(hours=2)
    add_message(services.db, org, "engineering", "lucas", "Terraform modules ready for review", later, replies=2)
    tagged = add_message(services.db, org, "sales", "sophie", "Nouvelle grille #pricing", later)
    secret = add_message(services.db, org, "direction", "camille", "#pricing confidentiel", later)
    add_message(services.db, org, "sales", "thomas", "unrelated", later)
    with services.db.session(TENANT) as s:
        topic = Topic(key="pricing", label="pricing", created_at=later)
        s.add(topic)
        s.flush()
        for mid in (tagged, secret):
            s.add(MessageTopic(message_id=mid, topic_id=topic.id, sent_at=later))
        s.add(Follow(follower_id=org.people["emma"], target_key=f"p:{org.people['lucas']}", person_id=org.people["lucas"], created_at=later))
        s.add(Follow(follower_id=org.people["emma"], target_key=f"t:{topic.id}", topic_id=topic.id, created_at=later))
    [post] = run_until(bot, clock, datetime(2026, 11, 24, 8, 40, tzinfo=timezone.utc))
    body = post.reply.card.sections[0][1]  # type: ignore[union-attr]
    assert post.to.id == "emma" and post.reply.card.sections[0][0] == "From people and topics you follow"  # type: ignore[union-attr]
    assert "Terraform" in body and "grille" in body
    assert "confidentiel" not in str(post) and "unrelated" not in str(post)


def test_worst_case_digest_stays_inside_block_kit_and_adaptive_card_limits(prompts: Prompts) -> None:
    long = "Très long message plein d’accents éàèùç « guillemets » & <chevrons> " * 20
    entries = tuple(Entry(long[:160], "Marie-Ève Lefebvre-Durand" * 3, "x" * 300, "https://example.slack.com/archives/C123/p" + "9" * 200,
                          replies=999, reactions=999) for _ in range(5))
    content = Content(tuple((name, entries) for name in ("discussions", "ideas", "help", "kudos", "newcomers")) * 2,
                      contributors=12345, members=99999)
    reply = render_channel(prompts, "fr", content, "c" * 80, "weekly", "/causette")
    card = reply.card
    assert card is not None and len(card.sections) <= 7
    assert all(len(body) <= 2800 for _, body in card.sections)
    from adapters.slack.render import render_reply
    message = render_reply(reply, lambda key: prompts.t("fr", key))
    assert len(message.blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message.blocks)
    from adapters.teams.render import NO_NAMES, build_card
    adaptive = build_card(reply, NO_NAMES, lambda key, **p: prompts.t("fr", key, **p))
    assert len(json.dumps(adaptive, ensure_ascii=False).encode()) < 28_000
