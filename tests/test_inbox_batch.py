"""The inbox worker's batches: several rows in one transaction (first without savepoints, then,
when anything failed, each row in its savepoint). A row that fails loses nothing of the others
and repeats nothing; replies go out only once committed."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text

from bot.clock import FixedClock
from bot.context import Services
from bot.core import Bot
from bot.inbox import InboxWorker
from bot.types import ConversationRef, IncomingMessage, ReactionAdded, UserRef
from bot.unit import after_commit, batched, before_waiting, unit
from store import cursor_sql
from store import inbox as inbox_store
from store import people as people_store
from store import social
from store.db import ALL_TENANTS, Database
from store.models.core import PersonSkill
from store.models.inbox import InboxEvent


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    database = Database(db_url)
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS batch_work (inbox_id INTEGER, payload TEXT)"))
    yield database
    with database.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS batch_work"))
    database.dispose()


def _work_rows(db: Database) -> list[tuple[int, str]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT inbox_id, payload FROM batch_work ORDER BY inbox_id"))]


def _states(db: Database) -> dict[str, str]:
    with db.engine.connect() as conn:
        return dict(conn.execute(select(InboxEvent.dedupe_key, InboxEvent.state)).all())


def _write(db: Database, row, finish) -> None:  # type: ignore[no-untyped-def]
    with unit(db, ALL_TENANTS) as session:
        session.execute(text("INSERT INTO batch_work (inbox_id, payload) VALUES (:i, :p)"), {"i": row.id, "p": row.payload})
        finish(session)


def test_a_failing_row_rolls_back_alone_and_is_retried_alone(db: Database, clock: FixedClock) -> None:
    for n in range(5):
        inbox_store.put(db, "test", f"e{n}", "event", f"p{n}", clock.now(), order_key=f"C{n}")
    sent: list[tuple[str, dict[str, str]]] = []
    attempts = {"p2": 0}

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        _write(db, row, finish)
        if row.payload == "p2":
            attempts["p2"] += 1
            if attempts["p2"] <= 2:  # the optimistic pass, then the row alone in its savepoint
                raise ValueError("this payload cannot be handled yet")
        # What a reply sees when it goes out: its row committed as done.
        after_commit(lambda: sent.append((row.payload, _states(db))))

    worker = InboxWorker(db, clock, {"test": work}, batch=10)
    assert worker.run_once() == 5
    assert _states(db) == {"e0": "done", "e1": "done", "e2": "pending", "e3": "done", "e4": "done"}
    assert [p for _i, p in _work_rows(db)] == ["p0", "p1", "p3", "p4"]
    assert [payload for payload, _ in sent] == ["p0", "p1", "p3", "p4"]
    assert all(states[f"e{payload[1]}"] == "done" for payload, states in sent)
    assert attempts["p2"] == 2

    clock.advance(timedelta(seconds=3))  # past the failed row's backoff
    assert worker.run_once() == 1
    assert set(_states(db).values()) == {"done"}
    assert sorted(p for _i, p in _work_rows(db)) == ["p0", "p1", "p2", "p3", "p4"]  # each once
    assert [payload for payload, _ in sent][-1] == "p2"


def test_rows_done_before_a_network_wait_are_committed_before_it(db: Database, clock: FixedClock) -> None:
    for n in range(3):
        inbox_store.put(db, "test", f"e{n}", "event", f"p{n}", clock.now(), order_key="C")
    seen_while_waiting: list[dict[str, str]] = []

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        if row.payload == "p1":
            before_waiting()  # e.g. users.info for a person seen for the first time
            seen_while_waiting.append(_states(db))
        _write(db, row, finish)

    worker = InboxWorker(db, clock, {"test": work}, batch=10)
    assert worker.run_once() == 3
    assert seen_while_waiting == [{"e0": "done", "e1": "pending", "e2": "pending"}]
    assert set(_states(db).values()) == {"done"}
    assert [p for _i, p in _work_rows(db)] == ["p0", "p1", "p2"]


def test_a_row_whose_lease_was_lost_is_rolled_back_and_the_others_commit(db: Database, clock: FixedClock) -> None:
    for n in range(3):
        inbox_store.put(db, "test", f"e{n}", "event", f"p{n}", clock.now(), order_key=f"C{n}")

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        if row.payload == "p1":  # another worker took this row over meanwhile
            with db.session(ALL_TENANTS) as s:
                s.execute(text("UPDATE inbox_events SET locked_by = 'someone else' WHERE id = :i"), {"i": row.id})
        _write(db, row, finish)

    worker = InboxWorker(db, clock, {"test": work}, batch=10)
    assert worker.run_once() == 3
    assert _states(db) == {"e0": "done", "e1": "pending", "e2": "done"}
    assert [p for _i, p in _work_rows(db)] == ["p0", "p2"]


def test_a_claim_takes_whole_conversations(db: Database, clock: FixedClock) -> None:
    for n, conversation in enumerate(["A", "B", "A", "B", "A"]):
        inbox_store.put(db, "slack", f"e{n}", "event", f"{conversation}{n}", clock.now(), order_key=conversation)
    first = inbox_store.claim(db, "w1", 3, clock.now())
    assert [r.payload for r in first] == ["A0", "A2", "A4"]
    assert [r.payload for r in inbox_store.claim(db, "w2", 3, clock.now())] == ["B1", "B3"]


def test_a_live_worker_renews_its_leases_and_only_its_own(db: Database, clock: FixedClock) -> None:
    for n in range(2):
        inbox_store.put(db, "slack", f"e{n}", "event", f"p{n}", clock.now(), order_key=f"C{n}")
    [mine] = inbox_store.claim(db, "w1", 1, clock.now())
    [theirs] = inbox_store.claim(db, "w2", 1, clock.now())
    clock.advance(inbox_store.LEASE - timedelta(seconds=1))
    inbox_store.renew(db, [mine], clock.now())
    clock.advance(timedelta(seconds=2))  # past the first lease: only the renewed row is still held
    assert [r.payload for r in inbox_store.claim(db, "w3", 5, clock.now())] == [theirs.payload]


def test_a_hook_failing_in_a_batch_loses_neither_its_message_nor_the_others(services: Services, bot: Bot,
                                                                            clock: FixedClock) -> None:
    db = services.db
    for n, skill in enumerate(["kubernetes", "pricing", "rollout"]):
        inbox_store.put(db, "console", f"line-{n}", "message", f"skills add {skill}", clock.now())
    failures: list[str] = []

    def broken_hook(ctx, msg):  # type: ignore[no-untyped-def]
        if "pricing" in msg.text:
            failures.append(msg.text)
            raise RuntimeError("a hook bug")
        return []

    bot.registry.on(IncomingMessage, broken_hook)
    replies: list[str] = []

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        user = UserRef("console", "acme", f"U{row.id}", "Alice")
        msg = IncomingMessage(id=str(row.id), text=row.payload, sender=user,
                              conversation=ConversationRef("console", "acme", f"D{row.id}", "dm"), addressed=True,
                              sent_at=clock.now())
        effects = bot.handle(msg, in_transaction=finish)
        after_commit(lambda: replies.extend(e.reply.key for e in effects))  # type: ignore[union-attr]

    worker = InboxWorker(db, clock, {"console": work}, batch=10)
    assert worker.run_once() == 3
    assert set(_states(db).values()) == {"done"}
    assert len(failures) == 2  # the optimistic attempt, then the row in its savepoints
    assert len(replies) == 3 and "error.internal" not in replies
    with db.session("acme") as s:
        assert s.scalar(select(func.count(PersonSkill.id))) == 3  # each command once, the failing hook's too


def test_a_new_topic_is_committed_at_once_so_other_workers_do_not_wait(db: Database, clock: FixedClock) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL: SQLite writes one transaction at a time")
    with db.session("T1") as s:
        people_store.ensure_workspace(s, "T1", "slack", "en")
    with db.session("T1") as s:  # a batch's transaction, still open
        [(key, topic_id)] = social.topics_for(s, "T1", ["#rollout"], clock.now()).items()
        with db.engine.connect() as other:  # another worker meanwhile
            found = other.execute(text("SELECT id FROM topics WHERE tenant = 'T1' AND key = :k"), {"k": key}).scalar()
        assert found == topic_id


def test_an_acknowledgement_waits_for_one_row_of_a_batch_not_the_whole_batch(db: Database, clock: FixedClock,
                                                                            backend: str) -> None:
    """SQLite: a batch holds the file's only write turn; an acknowledgement's inbox write
    (`Database.priority`) waiting for it gets it once the row being processed is done."""
    if backend != "sqlite":
        pytest.skip("SQLite's write turn; PostgreSQL writers do not take a whole-file lock")
    for n in range(3):
        inbox_store.put(db, "test", f"e{n}", "event", f"p{n}", clock.now(), order_key="C")
    acknowledged = threading.Event()
    seen: dict[str, bool] = {}

    def acknowledge() -> None:
        with db.priority():
            inbox_store.put(db, "test", "ack", "event", "later", clock.now(), order_key="D")
        acknowledged.set()

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        _write(db, row, finish)
        if row.payload == "p0":
            threading.Thread(target=acknowledge, daemon=True).start()
            deadline = time.monotonic() + 5
            while not db.priority_waiting() and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            seen[row.payload] = acknowledged.wait(5)

    worker = InboxWorker(db, clock, {"test": work}, batch=3)
    assert worker.run_once() == 3
    assert seen == {"p1": True, "p2": True}
    assert set(_states(db).values()) == {"done", "pending"}
    assert _states(db)["ack"] == "pending"
    assert [p for _i, p in _work_rows(db)] == ["p0", "p1", "p2"]


def test_a_person_who_opts_out_in_a_batch_is_not_indexed_by_its_later_rows(services: Services, bot: Bot,
                                                                           clock: FixedClock) -> None:
    """Whether the sender opted out is read with the event's rows: a later row of the same
    batch sees the opt-out an earlier row wrote."""
    db = services.db
    lines = [("bob", "shipping the #rollout today", False), ("bob", "privacy me off", True),
             ("bob", "the #pricing page is live", False), ("carol", "the #pricing review", False)]
    for n, (who, text_, addressed) in enumerate(lines):
        inbox_store.put(db, "console", f"line-{n}", "message", f"{who}|{int(addressed)}|{text_}", clock.now(),
                        order_key="C1")

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        who, addressed, text_ = row.payload.split("|", 2)
        msg = IncomingMessage(id=f"m{row.id}", text=text_, sender=UserRef("console", "acme", who, who.title()),
                              conversation=ConversationRef("console", "acme", "C1", "public", name="general"),
                              addressed=addressed == "1", sent_at=clock.now())
        bot.handle(msg, in_transaction=finish)

    worker = InboxWorker(db, clock, {"console": work}, batch=10)
    assert worker.run_once() == 4
    assert set(_states(db).values()) == {"done"}
    with db.session("acme", readonly=True) as s:
        indexed = set(s.execute(text("SELECT p.external_id, m.text FROM messages m JOIN people p ON p.id = m.author_id")))
    assert indexed == {("carol", "the #pricing review")}  # opting out also forgot what bob had said


def test_a_subscription_made_in_a_batch_pings_for_its_later_rows(services: Services, bot: Bot,
                                                                 clock: FixedClock) -> None:
    """Who has subscribers is read once per batch, and read again once a row subscribes."""
    db = services.db
    lines = [("bob", "C1", "shipping the #rollout today", False), ("carol", "D-carol", "subscribe #rollout", True),
             ("bob", "C1", "the #rollout is done", False)]
    for n, (who, where, text_, addressed) in enumerate(lines):
        inbox_store.put(db, "console", f"line-{n}", "message", f"{who}|{where}|{int(addressed)}|{text_}", clock.now())

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        who, where, addressed, text_ = row.payload.split("|", 3)
        kind = "dm" if where.startswith("D") else "public"
        msg = IncomingMessage(id=f"m{row.id}", text=text_, sender=UserRef("console", "acme", who, who.title()),
                              conversation=ConversationRef("console", "acme", where, kind, name=where.lower()),
                              addressed=addressed == "1", sent_at=clock.now())
        bot.handle(msg, in_transaction=finish)

    worker = InboxWorker(db, clock, {"console": work}, batch=10)
    assert worker.run_once() == 3
    assert set(_states(db).values()) == {"done"}
    with db.session("acme", readonly=True) as s:
        pinged = s.execute(text("SELECT p.external_id, n.params FROM notifications n JOIN people p ON p.id = n.person_id")).all()
    assert [who for who, _params in pinged] == ["carol"] and "is done" in str(pinged[0][1])


def _ambient_worker(bot: Bot, clock: FixedClock):  # type: ignore[no-untyped-def]
    """A console processor: "who|text" is an ambient message in #general, "who|+id" a reaction
    to message id, "who|>root|text" a reply in root's thread."""

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        who, rest = row.payload.split("|", 1)
        user = UserRef("console", "acme", who, who.title())
        where = ConversationRef("console", "acme", "C1", "public", name="general")
        if rest.startswith("+"):
            bot.handle(ReactionAdded(rest[1:], where, user, "tada"), in_transaction=finish)
            return
        thread = None
        if rest.startswith(">"):
            thread, rest = rest[1:].split("|", 1)
        msg = IncomingMessage(id=f"m{row.id}", text=rest, sender=user, conversation=replace(where, thread_id=thread),
                              addressed=False, sent_at=clock.now())
        bot.handle(msg, in_transaction=finish)

    return work


def test_a_batch_writes_its_ambient_messages_in_one_statement(services: Services, bot: Bot, clock: FixedClock,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody subscribes: a batch's posts are held and written together, before its rows are
    marked done, with their topics and evidence (sequenced for the other processes' indexes)."""
    db = services.db
    lines = ["bob|shipping the #rollout today", "carol|the #pricing page is live, #rollout next", "bob|no tag here"]
    for n, line in enumerate(lines):
        inbox_store.put(db, "console", f"line-{n}", "message", line, clock.now(), order_key="C1")
    inserts: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "INSERT INTO MESSAGES" in statement.upper():
            inserts.append(statement)

    run = cursor_sql._run  # noqa: SLF001 - statements run straight on the driver (PostgreSQL)

    def direct(session, sql, params, **kw):  # type: ignore[no-untyped-def]
        seen(None, None, sql)
        return run(session, sql, params, **kw)

    monkeypatch.setattr(cursor_sql, "_run", direct)
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        worker = InboxWorker(db, clock, {"console": _ambient_worker(bot, clock)}, batch=10)
        assert worker.run_once() == 3
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert set(_states(db).values()) == {"done"}
    assert len(inserts) == 1
    with db.session("acme", readonly=True) as s:
        assert sorted(s.execute(text("SELECT text FROM messages")).scalars()) == sorted(line.split("|")[1] for line in lines)
        links = s.execute(text("SELECT t.key, m.text FROM message_topics mt JOIN topics t ON t.id = mt.topic_id "
                               "JOIN messages m ON m.id = mt.message_id")).all()
        assert len(links) == 3
        batches = set(s.execute(text("SELECT token FROM evidence_batches")).scalars())
        stamped = set(s.execute(text("SELECT DISTINCT batch FROM evidence")).scalars())
        assert stamped and stamped <= batches  # every evidence row's batch is sequenced


def test_a_later_row_sees_the_messages_held_by_earlier_ones(services: Services, bot: Bot, clock: FixedClock) -> None:
    """A reaction and a thread reply to a message held earlier in the batch count on it: a
    statement naming the messages table writes what is held first."""
    db = services.db
    first = inbox_store.put(db, "console", "line-0", "message", "bob|the #rollout plan", clock.now(), order_key="C1")
    assert first
    with db.session(ALL_TENANTS, readonly=True) as s:
        root_id = s.scalar(select(InboxEvent.id).where(InboxEvent.dedupe_key == "line-0"))
    for n, line in enumerate([f"carol|+m{root_id}", f"dave|>m{root_id}|agreed on #rollout"], 1):
        inbox_store.put(db, "console", f"line-{n}", "message", line, clock.now(), order_key="C1")
    worker = InboxWorker(db, clock, {"console": _ambient_worker(bot, clock)}, batch=10)
    assert worker.run_once() == 3
    assert set(_states(db).values()) == {"done"}
    with db.session("acme", readonly=True) as s:
        assert s.execute(text(f"SELECT reaction_count, reply_count FROM messages WHERE external_id = 'm{root_id}'")).one() == (1, 1)


def test_a_held_message_failing_to_be_written_fails_its_batch_attempt_not_the_other_rows(
        services: Services, bot: Bot, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing the held posts fails: the optimistic attempt is rolled back and its rows are done
    again each alone (nothing held then), so only the failing message is lost to its hook."""
    db = services.db
    for n, line in enumerate(["bob|the #rollout plan", "carol|boom #pricing", "dave|the #rollout date"]):
        inbox_store.put(db, "console", f"line-{n}", "message", line, clock.now(), order_key="C1")
    calls: list[int] = []

    def failing(real):  # type: ignore[no-untyped-def]
        def ingest(session, tenant, posts, now):  # type: ignore[no-untyped-def]
            calls.append(len(posts))
            if any("boom" in p.text for p in posts):
                raise RuntimeError("cannot write this one")
            return real(session, tenant, posts, now)
        return ingest

    monkeypatch.setattr(social, "ingest", failing(social.ingest))
    monkeypatch.setattr(social, "_ingest_many_pg", failing(social._ingest_many_pg))  # noqa: SLF001
    worker = InboxWorker(db, clock, {"console": _ambient_worker(bot, clock)}, batch=10)
    assert worker.run_once() == 3
    assert calls[0] == 3 and calls[1:] == [1, 1, 1]  # held together, then each alone
    assert set(_states(db).values()) == {"done"}
    with db.session("acme", readonly=True) as s:
        assert sorted(s.execute(text("SELECT text FROM messages")).scalars()) == ["the #rollout date", "the #rollout plan"]


def test_a_deep_backlog_is_claimed_in_growing_batches_on_postgresql(db: Database, clock: FixedClock,
                                                                      backend: str) -> None:
    """A thread whose claim came back full doubles its next one, up to `deep_batch` (PostgreSQL;
    SQLite keeps `batch`: a batch holds its only write turn)."""
    for n in range(20):
        inbox_store.put(db, "test", f"e{n}", "event", f"p{n}", clock.now(), order_key="C")
    sizes: list[int] = []
    current: list[int] = []

    @batched
    def work(row, finish) -> None:  # type: ignore[no-untyped-def]
        _write(db, row, finish)
        current.append(row.id)

    worker = InboxWorker(db, clock, {"test": work}, threads=1, batch=2, deep_batch=8, poll_seconds=0.01)
    real = worker._process_together  # noqa: SLF001

    def counted(rows):  # type: ignore[no-untyped-def]
        sizes.append(len(rows))
        real(rows)

    worker._process_together = counted  # type: ignore[method-assign]  # noqa: SLF001
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while len(current) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert len(current) == 20 and set(_states(db).values()) == {"done"}
    assert sizes == ([2, 4, 8, 6] if backend == "postgresql" else [2] * 10)
