"""First sight without races, beyond people and conversations: the first declaration of a
skill, an alias, a piece of evidence, a follow, a new hashtag, a workspace setting, an absence
and a membership, done by several events at once (a double submit, a platform retry in
another process, two people with the same idea). Every command gets its normal answer, no
ambient message is dropped, nothing is logged as failed and each row exists exactly once.

On PostgreSQL the events really race (and two events writing the same new rows in opposite
orders could deadlock); SQLite runs one writer at a time, so there they check the same
outcome without the race.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from typing import Iterator, Sequence

import pytest
from sqlalchemy import func, select

from bot.core import Bot
from bot.text import mention_marker
from bot.types import ConversationRef, Event, IncomingMessage, MembersChanged, Outbound, UserRef
from store import expertise as xstore
from store import people as people_store
from store.models.contribution import ContributionSetting, ExpertAway
from store.models.core import Conversation, ConversationMember, Evidence, Person, PersonSkill, Skill, SkillAlias
from store.models.social import Follow, Message, MessageMention, MessageTopic, Topic

TENANT = "T-race"
N = 6
TAGS = 40
TIMEOUT = 120.0
_ids = count(1)


def user(handle: str) -> UserRef:
    return UserRef("console", TENANT, handle, handle.title())


def channel(name: str, kind: str = "public") -> ConversationRef:
    return ConversationRef("console", TENANT, name, kind, name=name)  # type: ignore[arg-type]


def command(who: str, text: str) -> IncomingMessage:
    return IncomingMessage(id=f"c{next(_ids)}", text=text, sender=user(who), conversation=channel(f"dm-{who}", "dm"),
                           addressed=True, via="command")


def message(who: str, text: str, mentions: Sequence[str] = ()) -> IncomingMessage:
    for handle in mentions:
        text += " " + mention_marker(handle)
    return IncomingMessage(id=f"m{next(_ids)}", text=text, sender=user(who), conversation=channel("general"),
                           addressed=False, mentions=tuple(user(h) for h in mentions), permalink="console://general")


def at_once(bot: Bot, events: Sequence[Event]) -> list[list[str]]:
    """Handle `events` in one thread each, released together; the reply keys of each."""
    barrier = threading.Barrier(len(events), timeout=TIMEOUT)

    def handle(event: Event) -> list[str]:
        barrier.wait()
        return [e.reply.key or "" for e in bot.handle(event) if isinstance(e, Outbound)]

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        futures = [pool.submit(handle, event) for event in events]
        return [future.result(timeout=TIMEOUT) for future in futures]


def answers(replies: list[list[str]]) -> Counter[str]:
    """Every event's single answer, counted (a command that got none or several fails)."""
    assert all(len(keys) == 1 for keys in replies), replies
    return Counter(keys[0] for keys in replies)


def rows(bot: Bot, *columns: object) -> Counter[tuple[object, ...]]:
    with bot.services.db.session(TENANT, readonly=True) as s:
        return Counter(tuple(r) for r in s.execute(select(*columns)).all())  # type: ignore[call-overload]


def total(bot: Bot, model: type) -> int:
    with bot.services.db.session(TENANT, readonly=True) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture(autouse=True)
def nothing_failed(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A hook that failed is rolled back and only logged (the message is lost): fail on it."""
    caplog.set_level(logging.WARNING)
    yield
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures


def test_new_skills_declared_by_several_people_at_once_in_opposite_orders(bot: Bot) -> None:
    people = [f"dev{i}" for i in range(N)]
    at_once(bot, [command(p, "help") for p in people])  # everyone exists: the race is the skills'
    orders = ["Rust, Go, Zig", "Zig, Go, Rust"]
    replies = at_once(bot, [command(p, f"skills add {orders[i % 2]}") for i, p in enumerate(people)])
    assert answers(replies) == Counter({"skills.added": N})
    assert sorted(k for (k,) in rows(bot, Skill.key)) == ["go", "rust", "zig"]
    assert total(bot, Skill) == 3
    links = _links(bot)
    assert set(links.values()) == {1} and len(links) == 3 * N
    # Every process's index took the declarations made by the others: a lookup finds them.
    found = at_once(bot, [command("asker", "who knows zig")])[0]
    assert found == ["expert.results"]


def _links(bot: Bot) -> Counter[tuple[object, ...]]:
    with bot.services.db.session(TENANT, readonly=True) as s:
        query = (select(Person.external_id, Skill.key).join(PersonSkill, PersonSkill.person_id == Person.id)
                 .join(Skill, Skill.id == PersonSkill.skill_id))
        return Counter(tuple(r) for r in s.execute(query).all())


def test_a_declaration_submitted_several_times_at_once_is_added_once(bot: Bot) -> None:
    at_once(bot, [command("emma", "help")])
    replies = at_once(bot, [command("emma", "skills add Elixir, Erlang") for _ in range(N)])
    assert answers(replies) == Counter({"skills.added": 1, "skills.confirmed": N - 1})
    assert _links(bot) == Counter({("emma", "elixir"): 1, ("emma", "erlang"): 1})


def test_an_alias_added_twice_at_once_is_one_row(bot: Bot) -> None:
    at_once(bot, [command("camille", "help")])
    replies = at_once(bot, [command("camille", "alias add k8s = kubernetes") for _ in range(N)])
    assert answers(replies) == Counter({"expert.alias.added": N})
    assert rows(bot, SkillAlias.alias_key, SkillAlias.target) == Counter({("k8s", "kubernetes"): 1})


def test_the_same_evidence_recorded_at_once_is_written_and_logged_once(bot: Bot) -> None:
    """No command records one piece of evidence twice at once today (help and kudos have
    their own guards): the store function itself must still not fail."""
    at_once(bot, [command("kevin", "help")])
    with bot.services.db.session(TENANT, readonly=True) as s:
        kevin = s.scalar(select(Person.id).where(Person.external_id == "kevin"))
    assert kevin is not None
    barrier = threading.Barrier(N, timeout=TIMEOUT)

    def record() -> bool:
        barrier.wait()
        with bot.services.db.session(TENANT) as s:
            return xstore.add_evidence(s, TENANT, kevin, "#Terraform", "help", bot.services.clock.now(),
                                       source_ref="help:1", snippet="plan vs apply")

    with ThreadPoolExecutor(max_workers=N) as pool:
        written = [f.result(timeout=TIMEOUT) for f in [pool.submit(record) for _ in range(N)]]
    assert written.count(True) == 1
    assert rows(bot, Evidence.person_id, Evidence.topic_key, Evidence.kind) == Counter({(kevin, "terraform", "help"): 1})
    with bot.services.db.session(TENANT, readonly=True) as s:
        assert s.scalar(select(Evidence.batch)) is not None
    assert at_once(bot, [command("asker", "who knows terraform")])[0] == ["expert.results"]


def test_a_follow_submitted_several_times_at_once_is_one_row(bot: Bot) -> None:
    at_once(bot, [message("alice", "hello #launch"), command("reader", "help")])  # the race is the follows'
    replies = at_once(bot, [command("reader", "follow @alice #launch") for _ in range(N)])
    assert answers(replies) == Counter({"social.followed": 1, "social.followed_already": N - 1})
    assert total(bot, Follow) == 2 and total(bot, Topic) == 1
    follows = rows(bot, Follow.target_key, Follow.level)
    assert set(follows.values()) == {1} and len(follows) == 2


def test_new_hashtags_and_people_in_opposite_orders_at_once_index_every_message(bot: Bot) -> None:
    """Two messages bringing the same new topics (and mentioning the same new people) in
    opposite orders: each one indexed, no deadlock, every topic and person once."""
    tags = [f"#topic{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(TAGS)]  # long inserts: a wide window
    texts = [" ".join(tags) + " news", " ".join(reversed(tags)) + " news"]
    mentions = [("nina", "omar", "paul"), ("paul", "omar", "nina")]
    events = [message(f"writer{i}", texts[i % 2], mentions[i % 2]) for i in range(N)]
    at_once(bot, [message(f"writer{i}", "hello") for i in range(N)])  # the channel exists, they are members
    at_once(bot, events)
    indexed = rows(bot, Message.external_id)
    assert [indexed[(e.id,)] for e in events] == [1] * N  # type: ignore[union-attr]
    assert sorted(k for (k,) in rows(bot, Topic.key)) == sorted(t.lstrip("#") for t in tags)
    assert total(bot, MessageTopic) == TAGS * N and total(bot, MessageMention) == 3 * N
    people = rows(bot, Person.external_id)
    assert set(people.values()) == {1} and {("nina",), ("omar",), ("paul",)} <= set(people)


def test_the_ideas_channel_set_twice_at_once_is_one_setting(bot: Bot) -> None:
    at_once(bot, [message("alice", "hello"), command("camille", "help")])
    replies = at_once(bot, [command("camille", "ideas channel #general") for _ in range(N)])
    assert answers(replies) == Counter({"idea.channel_set": N})
    with bot.services.db.session(TENANT, readonly=True) as s:
        general = s.scalar(select(Conversation.id).where(Conversation.external_id == "general"))
    assert rows(bot, ContributionSetting.name, ContributionSetting.value) == Counter({("ideas_channel", str(general)): 1})


def test_away_submitted_several_times_at_once_is_one_absence(bot: Bot) -> None:
    at_once(bot, [command("hugo", "help")])
    replies = at_once(bot, [command("hugo", "away until 2026-12-07") for _ in range(N)])
    assert answers(replies) == Counter({"help_requests.away_set": N})
    assert total(bot, ExpertAway) == 1
    with bot.services.db.session(TENANT, readonly=True) as s:
        hugo = people_store.find_person(s, "hugo")
        assert hugo is not None
        until = s.scalar(select(ExpertAway.until).where(ExpertAway.person_id == hugo.id))
    assert until is not None and until.date().isoformat() in ("2026-12-06", "2026-12-07")


def test_the_same_new_members_joining_in_opposite_orders_at_once(bot: Bot) -> None:
    """A roster sync and join events adding the same people, each in its own order: every
    person and membership once, and no event fails waiting for another."""
    team = channel("team", "private")
    newcomers = [user(f"new{i}") for i in range(5)]
    at_once(bot, [MembersChanged(team)])  # the conversation exists: the race is the newcomers'
    events: list[Event] = [MembersChanged(team, joined=tuple(newcomers if i % 2 else reversed(newcomers)))
                           for i in range(N)]
    at_once(bot, events)
    people = rows(bot, Person.external_id)
    assert all(people[(p.id,)] == 1 for p in newcomers)
    with bot.services.db.session(TENANT, readonly=True) as s:
        members = Counter(s.scalars(
            select(Person.external_id).join(ConversationMember, ConversationMember.person_id == Person.id)
            .join(Conversation, Conversation.id == ConversationMember.conversation_id)
            .where(Conversation.external_id == "team")))
    assert members == Counter({p.id: 1 for p in newcomers})
