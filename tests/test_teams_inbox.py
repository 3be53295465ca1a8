"""Nothing a Teams activity's answer acknowledged is lost, and nothing is done twice.

- `python app.py serve` configured for Teams (an app id: every activity carries a Bot Framework
  token signed by keys a loopback OpenID server publishes) is killed with SIGKILL in the middle
  of a burst, then started again, and the Bot Connector sends everything again: every channel
  message is indexed once, every command answered once.
- A database failure while an activity is processed is retried, with one reply.
- An activity that cannot be written is answered 503 (the Connector retries it); an invoke is
  answered at once and writes nothing.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Bot
from store.db import Database
from store.models.core import ProcessedEvent
from store.models.inbox import InboxEvent
from store.models.social import Message
from tests.served import free_port, kill_process, stop_process
from tests.slack_mock import LoopThread
from tests.teams_mock import MockConnector, bot_added_to_team, channel_message, personal_message
from tests.test_teams_hostile import APP_ID, KeyServer, token
from tests.test_teams_http import drained, local, post, serving

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent / "teams_inbox_site"  # the outgoing token stand-in (sitecustomize)
TENANT = "tenant-inbox"
TEAM = "19:inbox-team@thread.tacv2"  # its General channel has the team's id
BURST = 40


class Served:
    """One `python app.py serve` for Teams (app id set: tokens are checked) on a loopback port."""

    def __init__(self, db_url: str, metadata_url: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.upper().startswith(("SLACK_", "CAUSETTE_", "MICROSOFT"))}
        env.update({"DATABASE_URL": db_url, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "secret",
                    "CAUSETTE_TEAMS_OPENID_METADATA_URL": metadata_url, "PORT": str(self.port),
                    "CAUSETTE_HOST": "127.0.0.1", "PYTHONPATH": os.pathsep.join((str(ROOT), str(SITE)))})
        self.proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}")
            try:
                if self._request("GET", "/healthz") == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve did not start in 60 s")

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            return conn.getresponse().status
        finally:
            conn.close()

    def post(self, activity: dict[str, Any], key: rsa.RSAPrivateKey) -> int:
        bearer = token(key, "k1", service_url=activity["serviceUrl"])
        return self._request("POST", "/api/messages", json.dumps(activity).encode(),
                             {"Content-Type": "application/json", "Authorization": "Bearer " + bearer})

    def kill(self) -> None:
        kill_process(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def connector() -> Iterator[tuple[MockConnector, LoopThread]]:
    loop = LoopThread()
    mock = MockConnector()
    loop.run(mock.start())
    yield mock, loop
    mock.stalled = False
    loop.run(mock.stop())
    loop.stop()


@pytest.fixture
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def burst(service: str) -> list[dict[str, Any]]:
    """Channel messages (indexed, no answer) and commands in one person's personal chat (one
    answer each), alternating."""
    activities = []
    for n in range(BURST):
        if n % 2 == 0:
            activity = channel_message(service, TENANT, f"29:person{n % 7}", TEAM, f"Status {n} of the #rollout{n % 5} plan",
                                       f"chan-{n}", mention_bot=False, team=TEAM)
        else:
            activity = personal_message(service, TENANT, "29:ana", f"idea Car pooling plan {n}", f"cmd-{n}", "Ana")
        activities.append(activity)
    return activities


def indexed(db: Database) -> list[str]:
    with db.session(TENANT, readonly=True) as s:
        return list(s.scalars(select(Message.text)))


def answers(mock: MockConnector, activity_id: str) -> int:
    return len([c for c in mock.messages() if c.kind == "reply" and c.activity_id == activity_id])


@pytest.mark.slow
def test_serve_killed_mid_burst_loses_and_repeats_nothing(db_url: str, connector: tuple[MockConnector, LoopThread],
                                                          signing_key: rsa.RSAPrivateKey) -> None:
    mock, _loop = connector
    service = mock.url
    activities = burst(service)
    channel_texts = sorted(a["text"] for a in activities if a["id"].startswith("chan-"))
    commands = [a["id"] for a in activities if a["id"].startswith("cmd-")]
    db = Database(db_url)
    with KeyServer({"k1": signing_key}) as keys:
        first = Served(db_url, keys.metadata_url)
        acked: list[str] = []
        try:
            assert first.post(bot_added_to_team(service, TENANT, TEAM, "install-1"), signing_key) == 201
            deadline = time.monotonic() + 30
            while not mock.messages() and time.monotonic() < deadline:  # the welcome: the bot is in the team
                time.sleep(0.05)
            assert mock.messages(), "no welcome"
            forged = token(rsa.generate_private_key(public_exponent=65537, key_size=2048), "k1", service)
            assert first._request("POST", "/api/messages", json.dumps(activities[0]).encode(),
                                  {"Content-Type": "application/json", "Authorization": "Bearer " + forged}) == 401
            # A slow Bot Connector: the first command's answer arrives and is not answered, so
            # its turn stays in flight (committed, answer on its way) while the rest waits.
            mock.stalled = True
            for activity in activities[: BURST // 2]:
                assert first.post(activity, signing_key) == 201
                acked.append(activity["id"])
            deadline = time.monotonic() + 30
            while answers(mock, commands[0]) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert answers(mock, commands[0]) == 1
            first.kill()  # mid-burst: half acknowledged, most of it not processed yet
        finally:
            first.stop()
        before_restart = len(indexed(db))
        with db.session("*", readonly=True) as s:  # the commands behind the one in flight, at least
            waiting = s.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state == "pending"))
        assert waiting >= 1
        mock.stalled = False

        second = Served(db_url, keys.metadata_url)
        try:
            # The Connector sends again what it did not see acknowledged, and (retries of slow
            # answers) what it did: the inbox takes each once.
            for activity in activities:
                assert second.post(activity, signing_key) == 201
            deadline = time.monotonic() + 90  # rows the killed process held come back when their lease expires
            while time.monotonic() < deadline and (len(indexed(db)) < len(channel_texts)
                                                   or any(answers(mock, c) == 0 for c in commands)):
                time.sleep(0.2)
            time.sleep(0.5)  # a second answer to anything would arrive now
        finally:
            second.stop()
    try:
        assert sorted(indexed(db)) == channel_texts
        assert {c: answers(mock, c) for c in commands} == {c: 1 for c in commands}
        assert before_restart <= len(acked)
        with db.session("*", readonly=True) as s:
            assert s.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state != "done")) == 0
        with db.session(TENANT, readonly=True) as s:
            from store.models.contribution import Idea

            assert sorted(s.scalars(select(Idea.title))) == sorted(f"Car pooling plan {c.split('-')[1]}" for c in commands)
    finally:
        db.dispose()


# In process ------------------------------------------------------------------------------
def test_a_database_failure_while_processing_is_retried_with_one_reply(bot: Bot, settings: Settings,
                                                                       clock: FixedClock) -> None:
    original = bot.handle
    failures: list[str] = []

    def flaky(event: Any, **kwargs: Any) -> Any:
        """The first commit of an activity's work meets a database that went away."""
        done = kwargs.get("in_transaction")
        if done is not None and not failures:
            def fail_then_commit(session: Any) -> None:
                failures.append(getattr(event, "id", ""))
                raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

            kwargs["in_transaction"] = fail_then_commit
        return original(event, **kwargs)

    bot.handle = flaky  # type: ignore[method-assign]

    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                assert await post(url, personal_message(service, TENANT, "29:ana", "idea Bike sheds", "flaky-1")) == 201
                for _ in range(200):  # the first attempt fails and backs off
                    if failures and await asyncio.to_thread(row_state, bot) == ("pending", 1):
                        break
                    await asyncio.sleep(0.02)
                assert failures == ["flaky-1"] and mock.messages() == []
                clock.advance(timedelta(seconds=5))  # the backoff is over
                await drained(url)
                await mock.wait_for(1)
                assert await post(url, personal_message(service, TENANT, "29:ana", "idea Bike sheds", "flaky-1")) == 201
                await drained(url)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    assert [(c.kind, c.activity_id) for c in mock.messages()] == [("reply", "flaky-1")]
    assert row_state(bot) == ("done", 2)
    with bot.services.db.session(TENANT) as s:
        from store.models.contribution import Idea

        assert list(s.scalars(select(Idea.title))) == ["Bike sheds"]
        assert s.scalar(select(func.count(ProcessedEvent.id)).where(ProcessedEvent.key.like("teams:message:flaky-1:%"))) == 1


def row_state(bot: Bot) -> tuple[str, int] | None:
    with bot.services.db.session("*", readonly=True) as s:
        row = s.execute(select(InboxEvent.state, InboxEvent.attempts).where(InboxEvent.platform == "teams",
                                                                            InboxEvent.kind == "message")).first()
    return (row.state, row.attempts) if row is not None else None


def test_an_activity_that_cannot_be_written_is_answered_503_and_an_invoke_writes_nothing(
        bot: Bot, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.server import Pipeline

    def database_away(*_args: Any, **_kwargs: Any) -> bool:
        raise OperationalError("INSERT", {}, Exception("could not connect to server"))

    async def run() -> tuple[list[int], MockConnector]:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                invoke = personal_message(service, TENANT, "29:ana", "", "inv-1")
                invoke.update(type="invoke", name="adaptiveCard/action", value={"action": {"type": "Action.Execute"}})
                statuses = [await post(url, invoke)]
                with monkeypatch.context() as m:
                    m.setattr(Pipeline, "put", database_away)
                    statuses.append(await post(url, personal_message(service, TENANT, "29:ana", "help", "away-1")))
                statuses.append(await post(url, personal_message(service, TENANT, "29:ana", "help", "away-1")))  # the retry
                await drained(url)
                await mock.wait_for(1)
        finally:
            await mock.stop()
        return statuses, mock

    statuses, mock = asyncio.run(run())
    assert statuses == [501, 503, 201]
    assert [(c.kind, c.activity_id) for c in mock.messages()] == [("reply", "away-1")]
    with bot.services.db.session("*", readonly=True) as s:
        assert list(s.scalars(select(InboxEvent.kind))) == ["message"]


def test_an_answered_activity_is_processed_at_once_by_one_claimer(bot: Bot, settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The express lane takes the row as soon as the answer went out: no wait for the worker's
    poll (30 s here), and not every worker thread claiming at once; a burst is answered once each."""
    from adapters.server import Pipeline, build_app
    from store import inbox as inbox_store
    from tests.teams_mock import serve_locally

    claims: list[int] = []
    original = inbox_store.claim

    def counted(*args: Any, **kwargs: Any) -> Any:
        rows = original(*args, **kwargs)
        claims.append(len(rows))
        return rows

    monkeypatch.setattr(inbox_store, "claim", counted)

    async def run() -> tuple[list[float], MockConnector]:
        mock = MockConnector()
        service = await mock.start()
        pipeline = Pipeline(bot)
        pipeline.worker.poll_seconds = 30.0
        runner, base = await serve_locally(build_app(bot, local(settings), pipeline=pipeline))  # type: ignore[arg-type]
        url = base + "api/messages"
        waits: list[float] = []
        try:
            await asyncio.sleep(0.1)  # the worker's threads made their first (empty) claims
            claims.clear()
            for n in range(5):
                started = time.monotonic()
                assert await post(url, personal_message(service, TENANT, "29:ana", "help", f"one-{n}")) == 201
                await mock.wait_for(n + 1, timeout=5)
                waits.append(time.monotonic() - started)
            assert sum(1 for c in claims if c) == 5 and len(claims) <= 10  # one claim and one empty look each
            statuses = await asyncio.gather(*(post(url, personal_message(service, TENANT, f"29:p{n}", "help", f"many-{n}"))
                                              for n in range(20)))
            assert statuses == [201] * 20
            await mock.wait_for(25, timeout=20)
            await asyncio.sleep(0.3)  # a second reply to anything would arrive now
        finally:
            await runner.cleanup()
            await mock.stop()
        return waits, mock

    waits, mock = asyncio.run(run())
    assert max(waits) < 2.0
    replied = sorted(c.activity_id for c in mock.messages())
    assert replied == sorted([f"one-{n}" for n in range(5)] + [f"many-{n}" for n in range(20)])


def test_a_reply_the_connector_refused_is_sent_again_by_the_outbox_once(bot: Bot, settings: Settings,
                                                                          clock: FixedClock) -> None:
    """The Bot Connector answers the reply with 500, then 200: the activity's work is done once,
    its reply recorded with it, sent again by the outbox sweeper, and seen once."""
    from bot import outbox as durable_outbox
    from store.models.outbox import OutboxEntry

    def outbox_rows() -> list[tuple[str, str, int]]:
        with bot.services.db.session("*", readonly=True) as s:
            return [(r.source, r.state, r.attempts) for r in s.execute(
                select(OutboxEntry.source, OutboxEntry.state, OutboxEntry.attempts).order_by(OutboxEntry.id))]

    async def run() -> tuple[MockConnector, list[tuple[str, str, int]]]:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, sender):
                mock.fail_next(500)
                assert await post(url, personal_message(service, TENANT, "29:ana", "idea Bike sheds", "fault-1")) == 201
                await drained(url)
                assert mock.attempts == 1 and mock.messages() == []
                after_failure = await asyncio.to_thread(outbox_rows)
                clock.advance(timedelta(minutes=11))  # past the row's backoff
                for _ in range(2):  # the second sweep finds nothing left to send
                    assert await asyncio.to_thread(durable_outbox.sweep, bot.services.db, clock, sender.send) == []
                await mock.wait_for(1)
                await asyncio.sleep(0.2)
        finally:
            await mock.stop()
        return mock, after_failure

    mock, after_failure = asyncio.run(run())
    assert after_failure == [("teams", "pending", 1)]
    assert [c.conversation_id for c in mock.messages()] == ["a:dm-29:ana"]
    assert "Bike sheds" in json.dumps(mock.messages()[0].body)
    assert outbox_rows() == [("teams", "sent", 2)]
    with bot.services.db.session(TENANT, readonly=True) as s:
        from store.models.contribution import Idea

        assert list(s.scalars(select(Idea.title))) == ["Bike sheds"]
