"""Nothing acknowledged is lost: `python app.py serve` killed with SIGKILL in the middle of
a burst of signed Slack events, then started again. Every event Slack saw acknowledged is
indexed, and Slack's retries of all of them (acknowledged or not) index nothing twice."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import func, select

from store.db import Database
from store.models.social import Message
from tests.conftest import spec_file
from tests.harness.slack import BOT_TOKEN, BOT_USER, SECRET, TEAM, sign
from tests.slack_mock import LoopThread, SlackMock

ROOT = Path(__file__).resolve().parent.parent
BURST = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """One `python app.py serve` process on a loopback port."""

    def __init__(self, db_url: str, api_url: str) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CAUSETTE_", "Microsoft"))}
        env.update({"DATABASE_URL": db_url, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN,
                    "SLACK_API_URL": api_url, "PORT": str(self.port), "CAUSETTE_HOST": "127.0.0.1",
                    "PYTHONPATH": str(ROOT)})
        self.proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}")
            try:
                if self.get("/healthz") == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve did not start in 60 s")

    def get(self, path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def post_event(self, payload: dict[str, object], retry: int = 0) -> int:
        body = json.dumps(payload).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign(body, ts)}
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/slack/events", body=body, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def slack_api() -> Iterator[SlackMock]:
    loop = LoopThread()
    mock = SlackMock(spec_file("slack-web-openapi-v2.json"), team=TEAM, bot_user=BOT_USER)
    loop.run(mock.start())
    yield mock
    loop.run(mock.stop())
    loop.stop()


def _event(n: int) -> dict[str, object]:
    text = f"Status update {n} on the #rollout{n % 5} plan"
    event = {"type": "message", "channel": "CGENERAL", "channel_type": "channel", "user": f"UPERSON{n % 9}",
             "text": text, "ts": f"{1764000000 + n}.000100"}
    return {"token": "legacy", "team_id": TEAM, "api_app_id": "A0CAUSETTE", "type": "event_callback",
            "event_id": f"EvKILL{n:04d}", "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]}


def _indexed(db: Database) -> list[str]:
    with db.session(TEAM, readonly=True) as s:
        return list(s.scalars(select(Message.text)))


@pytest.mark.slow
def test_serve_killed_mid_burst_loses_and_repeats_nothing(db_url: str, slack_api: SlackMock) -> None:
    db = Database(db_url)
    first = Served(db_url, slack_api.api_url)
    acked: list[int] = []
    try:
        for n in range(BURST):
            if n == BURST // 2:
                first.kill()  # in the middle of the burst, with the first half acknowledged
                break
            if first.post_event(_event(n)) == 200:
                acked.append(n)
    finally:
        first.stop()
    assert len(acked) == BURST // 2
    before_restart = len(_indexed(db))

    second = Served(db_url, slack_api.api_url)
    try:
        # Slack retries what it did not see acknowledged; the test also replays every event
        # that was acknowledged (retries of a slow ack), which must change nothing.
        for n in range(BURST):
            assert second.post_event(_event(n), retry=1 if n in acked else 0) == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_indexed(db)) < BURST:
            time.sleep(0.2)
        texts = _indexed(db)
    finally:
        second.stop()
        db.dispose()
    assert sorted(texts) == sorted(str(_event(n)["event"]["text"]) for n in range(BURST))  # type: ignore[index]
    assert before_restart <= len(acked)


def test_events_acknowledged_during_a_lock_wait_in_the_inbox(db_url: str, slack_api: SlackMock) -> None:
    """A restart with deliveries already in the inbox and nobody sending: they are processed."""
    from store import inbox as inbox_store
    from bot.clock import SystemClock

    db = Database(db_url)
    for n in range(5):
        payload = json.dumps({"body": _event(100 + n), "bot_user_id": BOT_USER})
        inbox_store.put(db, "slack", f"event:EvKILL{100 + n:04d}", "event", payload, SystemClock().now(),
                        tenant=TEAM, order_key=f"{TEAM}:CGENERAL")
    served = Served(db_url, slack_api.api_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_indexed(db)) < 5:
            time.sleep(0.1)
        assert len(_indexed(db)) == 5
        with db.session("*", readonly=True) as s:
            from store.models.inbox import InboxEvent

            assert s.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state == "pending")) == 0
    finally:
        served.stop()
        db.dispose()
