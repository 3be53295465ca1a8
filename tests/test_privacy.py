"""The privacy contract on every read path (feed, topic card, subscribers' pings, expertise
"why" snippets, export), plus erasure and the retention purge."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from bot.core import Bot
from bot.types import Outbound
from store import social
from store.models.core import Evidence, Person
from store.models.notifications import Notification
from store.models.social import Follow, Message, MessageMention
from tests.test_social_index import TENANT, command, count, join, keys, post

SECRET = "Budget reorg secret"


def _org(bot: Bot) -> None:
    """alice and boss share the private #board; eve (outsider) follows and subscribes to all."""
    post(bot, "eve", "general", "hello")
    post(bot, "alice", "general", "hello #pricing")
    join(bot, "board", "alice", "boss")
    for target in ("@alice", "#reorg", "#pricing"):
        assert keys(command(bot, "eve", f"subscribe {target}")) == ["social.subscribed"]
        command(bot, "boss", f"subscribe {target}")
    post(bot, "alice", "board", f"{SECRET} #reorg #pricing, thanks @eve", kind="private")


def _person_id(bot: Bot, handle: str) -> int:
    with bot.services.db.session(TENANT) as s:
        return s.scalar(select(Person.id).where(Person.external_id == handle))  # type: ignore[return-value]


def test_private_posts_never_reach_a_non_member(bot: Bot, clock) -> None:
    _org(bot)
    # feed
    eve_feed = command(bot, "eve", "feed")[0].reply
    assert SECRET not in json.dumps([eve_feed.text, eve_feed.card.sections if eve_feed.card else ()])
    boss_feed = command(bot, "boss", "feed")[0].reply
    assert boss_feed.card is not None and SECRET in boss_feed.card.sections[0][1]
    # topic card: a topic living only in the private channel does not exist for eve
    assert keys(command(bot, "eve", "topic #reorg")) == ["topic.unknown"]
    assert keys(command(bot, "boss", "topic #reorg")) == ["topic.card"]
    pricing = command(bot, "eve", "topic #pricing")[0].reply
    assert SECRET not in str(pricing.card) and "#board" not in str(pricing.card)
    # real-time pings
    clock.advance(timedelta(minutes=6))
    pings = {e.to.id: e.reply.text for e in bot.run_all_jobs() if isinstance(e, Outbound)}
    assert "eve" not in pings and SECRET in pings["boss"]
    # expertise "why" snippets
    with bot.services.db.session(TENANT) as s:
        eve, boss, alice = (_person_id(bot, h) for h in ("eve", "boss", "alice"))
        assert all(SECRET not in e.snippet for e in social.visible_evidence(s, eve, alice, limit=50))
        assert any(SECRET in e.snippet for e in social.visible_evidence(s, boss, alice, limit=50))
        assert social.visible_evidence(s, eve, eve, "reorg") == []  # eve was thanked in there: she still cannot read it
    # export: eve's evidence from #board is counted, not shown
    exported = command(bot, "eve", "export my data")[0].reply
    assert exported.key == "privacy.exported" and exported.attachment is not None
    data = json.loads(exported.attachment[1])
    assert SECRET not in exported.attachment[1].decode()
    assert data["expertise_evidence_from_conversations_you_cannot_read"] == 4
    assert data["mentioned_in"] == []


def test_switched_off_channel_hides_what_it_had(bot: Bot) -> None:
    _org(bot)
    command(bot, "camille", "privacy channel off #board")
    assert keys(command(bot, "boss", "topic #reorg")) == ["topic.unknown"]
    assert count(bot, Message, Message.text.contains("secret")) == 0


def test_export_contains_everything_about_the_person(bot: Bot) -> None:
    _org(bot)
    command(bot, "alice", "notifications cap 3")
    data = json.loads(command(bot, "alice", "export my data")[0].reply.attachment[1])  # type: ignore[index]
    assert data["profile"]["external_id"] == "alice"
    assert [m["text"] for m in data["messages"]] == ["hello #pricing", SECRET + " #reorg #pricing, thanks @Eve"]
    assert sorted(data["messages"][1]["hashtags"]) == ["pricing", "reorg"]
    assert {f["person"] for f in data["followers"]} == {"Eve", "Boss"}
    assert {e["kind"] for e in data["expertise_evidence"]} == {"hashtag"}
    assert data["notification_settings"]["daily_cap"] == 3
    assert "board" in data["conversations"]


def test_forget_me_erases_everything_identifying(bot: Bot, clock) -> None:
    _org(bot)
    clock.advance(timedelta(minutes=6))
    bot.run_all_jobs()
    eve = _person_id(bot, "eve")
    confirm = command(bot, "eve", "forget me")[0].reply
    assert confirm.card is not None and confirm.card.actions[0].command == "forget me confirm"
    assert count(bot, Person, Person.id == eve) == 1  # nothing happens before the confirmation
    assert keys(command(bot, "eve", "forget me confirm")) == ["privacy.forgotten"]
    assert count(bot, Person, Person.id == eve) == 0
    for model, column in ((Message, Message.author_id), (MessageMention, MessageMention.person_id),
                          (Evidence, Evidence.person_id), (Notification, Notification.person_id),
                          (Follow, Follow.follower_id)):
        assert count(bot, model, column == eve) == 0, model.__name__
    assert count(bot, Message, Message.text.contains("eve")) == 0
    assert count(bot, Evidence, Evidence.snippet.contains("eve")) == 0
    with bot.services.db.session(TENANT) as s:
        assert "@…" in (s.scalar(select(Message.text).where(Message.text.contains("secret"))) or "")


def test_retention_purges_old_snippets_once_an_hour(bot: Bot, clock) -> None:
    post(bot, "alice", "general", "ancient #pricing", when=clock.now() - timedelta(days=200), backfill=True)
    post(bot, "alice", "general", "recent #pricing")
    job = next(j for j in bot.registry.jobs if j.name == "social.retention")
    bot.run_job(job)
    assert count(bot, Message) == 1
    with bot.services.db.session(TENANT) as s:
        snippets = sorted(s.scalars(select(Evidence.snippet)))
        assert snippets == ["", "recent #pricing"]  # the evidence stays, its old snippet goes
        assert s.scalar(select(func.count(Evidence.id))) == 2
    post(bot, "alice", "general", "late ancient", when=clock.now() - timedelta(days=300), backfill=True)
    bot.run_job(job)  # same hour: already done
    assert count(bot, Message) == 2
    clock.advance(timedelta(hours=1))
    bot.run_job(job)
    assert count(bot, Message) == 1
