"""Several worker processes on one database rank "who knows" alike.

Each process keeps evidence in memory (handlers/expertise/evidence.py). Evidence another
process writes or removes reaches it through the evidence log (store/evidence_log.py)
without rebuilding its index; a conversation turning public or private rebuilds it.
Here each "process" is a Bot with its own engine and its own index cache; the last
test runs real concurrent writers against a reader.
"""
from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Iterator

import pytest
from sqlalchemy import func, select

from bot.context import Ctx, Services
from bot.core import Bot
from handlers.expertise.lookup import find_experts
from handlers.expertise.evidence import EvidenceBook
from bot.types import MessageDeleted
from handlers import build_registry
from store import evidence_log
from store import expertise as xstore
from store.db import Database
from store.models.core import Evidence, EvidenceBatch, EvidenceRemoval, Person, Workspace
from tests.test_social_index import TENANT, command, conv, join, post


@pytest.fixture
def other(services: Services) -> Iterator[Bot]:
    """A second worker: same database, its own engine and in-memory index."""
    db = Database(services.settings.database_url)
    yield Bot(Services(settings=services.settings, db=db, prompts=services.prompts, clock=services.clock,
                       registry=build_registry()))
    db.dispose()


def experts(bot: Bot, asker: str, topic: str) -> dict[str, tuple[str, ...]]:
    """`who knows <topic>` as `asker` asks it in this process: each result's reasons."""
    with bot.services.db.session(TENANT) as s:
        workspace = s.get(Workspace, TENANT)
        actor = s.scalar(select(Person).where(Person.external_id == asker))
        result = find_experts(Ctx.for_person(bot.services, s, workspace, actor), topic)  # type: ignore[arg-type]
        return {c.person.external_id: c.why for c in result.candidates}


def index_of(bot: Bot) -> object:
    return bot.services.extras["expertise"].indexes[TENANT]


def test_evidence_from_another_process_counts_then_goes_without_a_rebuild(bot: Bot, other: Bot) -> None:
    post(bot, "tom", "general", "we moved to #terraform")
    command(bot, "asker", "help")
    assert list(experts(bot, "asker", "terraform")) == ["tom"]
    index = index_of(bot)

    first, _ = post(other, "zoe", "general", "my #terraform module is ready")
    post(other, "zoe", "ops", "#terraform plan reviewed")
    found = experts(bot, "asker", "terraform")
    assert index_of(bot) is index, "new evidence must not rebuild the index"
    assert list(found) == ["zoe", "tom"]
    assert any("2" in why for why in found["zoe"]), found["zoe"]

    other.handle(MessageDeleted(first, conv("general")))
    found = experts(bot, "asker", "terraform")
    assert index_of(bot) is index
    assert any("1" in why for why in found["zoe"]) and not any("2" in why for why in found["zoe"]), found["zoe"]


def test_private_evidence_follows_membership_and_the_channel_kind(bot: Bot, other: Bot) -> None:
    post(bot, "tom", "general", "#terraform everywhere")
    for who in ("member", "outsider"):
        command(bot, who, "help")
    join(other, "secret", "sam", "member")
    post(other, "sam", "secret", "#terraform state moved", kind="private")
    assert set(experts(bot, "member", "terraform")) == {"tom", "sam"}
    assert set(experts(bot, "outsider", "terraform")) == {"tom"}

    join(other, "secret", "outsider")
    assert set(experts(bot, "outsider", "terraform")) == {"tom", "sam"}, "a new member reads the channel's evidence"

    post(other, "sam", "open", "#terraform again")
    assert set(experts(bot, "tom", "terraform")) == {"tom", "sam"}
    index = index_of(bot)
    post(other, "sam", "open", "this channel is private now", kind="private")  # the platform says it turned private
    assert set(experts(bot, "tom", "terraform")) == {"tom"}, "tom is not in that channel"
    assert index_of(bot) is not index, "a conversation changing kind rebuilds the index"


def test_a_channel_switched_off_stops_counting_everywhere(bot: Bot, other: Bot) -> None:
    post(bot, "tom", "general", "#terraform")
    post(bot, "zoe", "ops", "#terraform")
    command(bot, "camille", "help")
    assert set(experts(bot, "camille", "terraform")) == {"tom", "zoe"}
    assert [o.reply.key for o in command(other, "camille", "privacy channel off", where="ops", kind="public")]
    assert set(experts(bot, "camille", "terraform")) == {"tom"}


def test_writes_are_sequenced_once_per_transaction(bot: Bot) -> None:
    post(bot, "tom", "general", "#terraform")
    now = bot.services.clock.now()
    with bot.services.db.session(TENANT) as s:
        seq = evidence_log.current(s, TENANT)
        tom = s.scalar(select(Person).where(Person.external_id == "tom"))
        savepoint = s.begin_nested()
        xstore.add_evidence(s, TENANT, tom.id, "#ansible", "help", now, source_ref="a")  # type: ignore[union-attr]
        savepoint.commit()
        xstore.add_evidence(s, TENANT, tom.id, "#ansible", "kudos", now, source_ref="b")  # type: ignore[union-attr]
    with bot.services.db.session(TENANT) as s:
        assert evidence_log.current(s, TENANT) == seq + 1
        batches = {b: n for b, n in s.execute(select(EvidenceBatch.token, EvidenceBatch.seq))}
        stamped = set(s.scalars(select(Evidence.batch).where(Evidence.topic_key == "ansible")))
        assert len(stamped) == 1 and batches[stamped.pop()] == seq + 1, "one batch for the whole transaction"

    session = bot.services.db.new_session(TENANT)
    xstore.add_evidence(session, TENANT, tom.id, "#ansible", "thanked", now, source_ref="c")  # type: ignore[union-attr]
    session.rollback()
    session.close()
    with bot.services.db.session(TENANT) as s:
        assert evidence_log.current(s, TENANT) == seq + 1, "a rolled-back write takes no number"
        removed = evidence_log.delete_evidence(s, Evidence.topic_key == "ansible")
        assert removed == 2
    with bot.services.db.session(TENANT) as s:
        assert evidence_log.current(s, TENANT) == seq + 2
        assert s.scalar(select(func.count()).select_from(EvidenceBatch)) == len(batches) + 1
        numbers = list(s.scalars(select(EvidenceBatch.seq).join(EvidenceRemoval, EvidenceRemoval.batch == EvidenceBatch.token)))
        assert numbers == [seq + 2, seq + 2]


def test_concurrent_writers_are_followed_exactly(bot: Bot) -> None:
    """Writers commit evidence and removals from several threads (each its own connection)
    while a reader catches up again and again: the reader ends with exactly the rows that
    are in the database, each once."""
    post(bot, "tom", "general", "#terraform")
    db = bot.services.db
    with db.session(TENANT) as s:
        people = [p.id for p in s.scalars(select(Person))]
    now = bot.services.clock.now()
    failures: list[BaseException] = []
    done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(25):
                with db.session(TENANT) as s:
                    for j in range(2):
                        xstore.add_evidence(s, TENANT, rng.choice(people), rng.choice(["#terraform", "#ansible"]), "hashtag",
                                            now - timedelta(days=rng.randrange(400)), source_ref=f"w{n}-{i}-{j}")
                    if i % 5 == 4:
                        evidence_log.delete_evidence(s, Evidence.source_ref == f"w{n}-{i - 2}-0")
        except BaseException as err:  # noqa: BLE001 - reported by the test
            failures.append(err)

    with db.session(TENANT) as s:
        book = EvidenceBook.load(s, TENANT)

    def reader() -> None:
        try:
            while not done.is_set():
                with db.session(TENANT) as s:
                    book.sync(s, TENANT, evidence_log.current(s, TENANT))
        except BaseException as err:  # noqa: BLE001
            failures.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    follower = threading.Thread(target=reader)
    follower.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    follower.join()
    assert not failures, failures
    with db.session(TENANT) as s:
        book.sync(s, TENANT, evidence_log.current(s, TENANT))
        stored = {(k, i) for i, k in s.execute(select(Evidence.id, Evidence.topic_key))}
    held = [(key, row_id) for key, topic in book.topics.items() for row_id in topic.ids]
    assert len(held) == len(set(held)), "a row was applied twice"
    assert set(held) == stored
