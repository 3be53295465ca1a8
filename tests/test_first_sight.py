"""First sight without races: a workspace's first messages, from people and in channels the bot
has never seen, arriving all at once (an installation, a busy channel) in several threads and
several worker processes. Every command gets its answer, every ambient message is indexed, and
each person, conversation and membership exists exactly once.

Run as a script, this file is the second-process worker:
`python tests/test_first_sight.py <database url> <part> <parts> <threads> <directory>` builds the
real services, says it is ready (a file `ready-<part>` in the directory), waits for a file `go`,
handles its share of the events and prints one JSON line with the reply keys it got.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
from sqlalchemy import func, select

from bot.core import Bot
from bot.text import mention_marker
from bot.types import ConversationRef, IncomingMessage, Outbound, UserRef
from store import people as people_store
from store.models.core import Conversation, ConversationMember, Person
from store.models.social import Message

ROOT = Path(__file__).resolve().parent.parent
TENANT = "T-first"
EVENTS = 40
PEOPLE = 10  # U0…U9 post; W0…W4 are only mentioned
CHANNELS = 4  # each (person, channel) pair posts twice; C3 is private
TIMEOUT = 180.0


def channel(i: int, *, from_command: bool) -> ConversationRef:
    name = f"C{i % CHANNELS}"
    # Slash commands do not say whether the channel is private: the private one must stay so.
    kind = "private" if name == "C3" and not from_command else "public"
    return ConversationRef("slack", TENANT, name, kind, name=name)  # type: ignore[arg-type]


def events() -> list[IncomingMessage]:
    """Every third event is a command, the others ambient messages with a shared hashtag and
    mentions both ways (U0 mentions U1 while U1 mentions U0) of people the bot has not seen."""
    out = []
    for i in range(EVENTS):
        sender = UserRef("slack", TENANT, f"U{i % PEOPLE}", f"User {i % PEOPLE}")
        if i % 3 == 0:
            out.append(IncomingMessage(id=f"cmd{i}", text="help", sender=sender, conversation=channel(i, from_command=True),
                                       addressed=True, via="command"))
            continue
        mentions = (UserRef("slack", TENANT, f"U{(i % PEOPLE) ^ 1}", f"User {(i % PEOPLE) ^ 1}"),
                    UserRef("slack", TENANT, f"W{i % 5}", f"Watcher {i % 5}"))
        text = f"first words about #launch, cc {mention_marker(mentions[0].id)} {mention_marker(mentions[1].id)}"
        out.append(IncomingMessage(id=f"msg{i}", text=text, sender=sender, conversation=channel(i, from_command=False),
                                   addressed=False, mentions=mentions, permalink=f"https://x/{i}"))
    return out


def ambient_ids() -> set[str]:
    return {e.id for e in events() if not e.addressed}


def run_together(bot: Bot, batch: Sequence[IncomingMessage], threads: int) -> dict[str, list[str]]:
    """Handle `batch` in `threads` threads, the first event of each released at once; the reply
    keys of each event."""
    first_wave = min(threads, len(batch))
    barrier = threading.Barrier(first_wave, timeout=TIMEOUT)

    def handle(index: int, event: IncomingMessage) -> list[str]:
        if index < first_wave:
            barrier.wait()
        return [e.reply.key or "" for e in bot.handle(event) if isinstance(e, Outbound)]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {e.id: pool.submit(handle, i, e) for i, e in enumerate(batch)}
        return {eid: future.result(timeout=TIMEOUT) for eid, future in futures.items()}


def assert_each_once(bot: Bot, replies: dict[str, list[str]]) -> None:
    commands = {e.id for e in events() if e.addressed}
    assert set(replies) == {e.id for e in events()}
    for eid, keys in replies.items():
        assert not any(k.startswith("error.") for k in keys), (eid, keys)
        if eid in commands:
            assert keys, f"command {eid} got no answer"
    with bot.services.db.session(TENANT) as s:
        people = Counter(s.scalars(select(Person.external_id)))
        assert people == Counter([f"U{i}" for i in range(PEOPLE)] + [f"W{i}" for i in range(5)])
        conversations = dict(s.execute(select(Conversation.external_id, Conversation.kind)).all())
        assert s.scalar(select(func.count(Conversation.id))) == CHANNELS
        assert conversations == {"C0": "public", "C1": "public", "C2": "public", "C3": "private"}
        members = Counter(s.execute(
            select(Person.external_id, Conversation.external_id)
            .join(ConversationMember, ConversationMember.person_id == Person.id)
            .join(Conversation, Conversation.id == ConversationMember.conversation_id)).all())
        expected = {(f"U{i % PEOPLE}", f"C{i % CHANNELS}") for i in range(EVENTS)}
        assert set(members) == expected and set(members.values()) == {1}, members
        indexed = Counter(s.scalars(select(Message.external_id)))
        assert set(indexed) == ambient_ids() and set(indexed.values()) == {1}


def test_first_messages_in_threads(bot: Bot) -> None:
    replies = run_together(bot, events(), threads=EVENTS)
    assert_each_once(bot, replies)


def test_first_messages_in_two_processes(bot: Bot, db_url: str, tmp_path: Path) -> None:
    threads = EVENTS // 2  # per process
    workers = [subprocess.Popen([sys.executable, str(Path(__file__)), db_url, str(part), "2", str(threads), str(tmp_path)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for part in range(2)]
    results = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while not all((tmp_path / f"ready-{part}").exists() for part in range(2)):
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "a worker did not get ready"
            time.sleep(0.05)
        (tmp_path / "go").touch()  # both have built their services: release them together
        for worker in workers:
            out, err = worker.communicate(timeout=TIMEOUT)
            assert worker.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert max(r["started"] for r in results) < min(r["ended"] for r in results), "the workers did not overlap"
    replies = {eid: keys for r in results for eid, keys in r["replies"].items()}
    assert_each_once(bot, replies)


def test_a_person_this_transaction_already_created_does_not_hang(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a new person is committed on a side connection; were the event's own
    transaction holding the same new row, that wait must end (and the row be found)."""
    monkeypatch.setattr(people_store, "SIDE_LOCK_TIMEOUT_MS", 200)
    user = UserRef("slack", TENANT, "U-self", "Self")
    with bot.services.db.session(TENANT) as s:
        people_store.ensure_workspace(s, TENANT, "slack", "en")
        s.add(Person(external_id="U-self", handle="self", display_name="Self"))
        s.flush()
        started = time.monotonic()
        person = people_store.sync_person(s, None, user, bot.services.clock.now())
        assert person.handle == "self" and time.monotonic() - started < 10
    with bot.services.db.session(TENANT) as s:
        assert s.scalar(select(func.count(Person.id))) == 1


def main(argv: Sequence[str]) -> int:
    from bot.clock import FixedClock
    from bot.config import Settings
    from bot.context import Services
    from bot.i18n import Prompts
    from handlers import build_registry
    from store.db import Database
    from tests.conftest import START

    url, part, parts, threads, meeting = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), Path(argv[4])
    settings = Settings(database_url=url, admins=["camille"], default_locale="en")
    services = Services(settings=settings, db=Database(url), prompts=Prompts.load(), clock=FixedClock(START),
                        registry=build_registry())
    bot = Bot(services)
    batch = events()[part::parts]
    (meeting / f"ready-{part}").touch()
    deadline = time.monotonic() + TIMEOUT
    while not (meeting / "go").exists():
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.002)
    started = time.time()
    replies = run_together(bot, batch, threads)
    print(json.dumps({"started": started, "ended": time.time(), "replies": replies}), flush=True)
    services.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
