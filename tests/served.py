"""`python app.py serve` as a subprocess on a loopback port, fed signed Slack traffic, answering
into the Slack Web API mock (tests/slack_mock.py): the helpers of the end-to-end fault tests
(tests/test_serve_kill.py, tests/test_serve_faults.py).

Every wait here is bounded in time and every retry loop in count; nothing leaves loopback.
"""
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
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from store.db import ALL_TENANTS, Database
from store.models.inbox import InboxEvent
from store.models.social import Message
from tests.conftest import spec_file
from tests.harness.slack import BOT_TOKEN, BOT_USER, SECRET, TEAM, sign
from tests.slack_mock import Call, LoopThread, SlackMock

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "/causette"
# Message timestamps start an hour before the tests run: recent enough for the retention job
# (which forgets old messages within seconds of a start), in the past for everything else.
BASE_TS = int(time.time()) - 3600
START_SECONDS = 90.0  # two cores shared by a whole team: a cold start of serve can be slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: the process gets no chance to finish anything."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 20 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def reap(proc: subprocess.Popen[Any]) -> None:
    """After a helper process's test, passed or failed: kill it if it still runs, close its output pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


class Served:
    """One `python app.py serve` process on a loopback port. With `log`, its stderr (the
    server's log) goes to that file, for the tests that read it."""

    def __init__(self, db_url: str, api_url: str, *, log: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = log
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CAUSETTE_", "Microsoft"))}
        base.update({"DATABASE_URL": db_url, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN,
                     "SLACK_API_URL": api_url, "PORT": str(self.port), "CAUSETTE_HOST": "127.0.0.1",
                     "PYTHONPATH": str(ROOT), **(env or {})})
        self._log_file = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=base,
                                     stdout=subprocess.DEVNULL, stderr=self._log_file or subprocess.DEVNULL)
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise

    def _wait_started(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                if self.get("/healthz") == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"serve did not start in {START_SECONDS:g} s")

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # HTTP ----------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float = 15.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get(self, path: str) -> int:
        return self.request("GET", path, timeout=10)[0]

    def post_signed(self, body: bytes, content_type: str, retry: int = 0) -> tuple[int, bytes]:
        """A request as Slack sends it; `retry` > 0 adds Slack's retry headers."""
        ts = int(time.time())
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, ts)}
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
        return self.request("POST", "/slack/events", body, headers)

    def post_event(self, payload: Mapping[str, Any], retry: int = 0) -> int:
        return self.post_signed(json.dumps(payload).encode(), "application/json", retry)[0]

    def post_command(self, fields: Mapping[str, str]) -> tuple[int, bytes]:
        return self.post_signed(urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def deliver_event(self, payload: Mapping[str, Any], *, tries: int = 12, pause: float = 0.5,
                      first: int | None = None) -> int:
        """Send an event until it is acknowledged, like Slack retrying what it did not see
        acknowledged (with its retry headers; Slack waits minutes, this waits `pause`).
        `first`: the status of an attempt already made. Returns how many attempts were refused."""
        refused = 0
        status = first
        for attempt in range(tries):
            if status == 200:
                return refused
            if status is not None:
                refused += 1
                time.sleep(pause)
            try:
                status = self.post_event(payload, retry=attempt + (first is not None))
            except OSError:
                status = None
                refused += 1
                time.sleep(pause)
        if status == 200:
            return refused
        raise AssertionError(f"event {payload.get('event_id')} never acknowledged in {tries} tries")

    # Process -------------------------------------------------------------------------
    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        kill_process(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@pytest.fixture
def slack_api() -> Iterator[SlackMock]:
    """The Slack Web API mock on loopback (import this fixture into the test module)."""
    loop = LoopThread()
    mock = SlackMock(spec_file("slack-web-openapi-v2.json"), team=TEAM, bot_user=BOT_USER)
    loop.run(mock.start())
    yield mock
    loop.run(mock.stop())
    loop.stop()


# Payloads ----------------------------------------------------------------------------
def event_payload(event_id: str, event: Mapping[str, Any], team: str = TEAM) -> dict[str, Any]:
    return {"token": "legacy", "team_id": team, "api_app_id": "A0CAUSETTE", "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()), "event": dict(event),
            "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True}]}


def message_ts(n: int, series: int = 0) -> str:
    """The Slack timestamp of test message `n` of `series` (n < 3600), unique within a series."""
    return f"{BASE_TS + n}.{series:06d}"


def channel_message(event_id: str, text: str, *, user: str, channel: str, ts: str) -> dict[str, Any]:
    """A plain message in a public channel (`channel_type` says so: no conversations.info)."""
    event = {"type": "message", "channel": channel, "channel_type": "channel", "user": user, "text": text, "ts": ts}
    return event_payload(event_id, event)


def command_fields(mock: SlackMock, key: str, text: str, *, user: str, channel: str,
                   channel_name: str = "general") -> dict[str, str]:
    """A slash command; its answers arrive at the mock's response_url `key`."""
    return {"token": "legacy", "team_id": TEAM, "team_domain": "demo", "channel_id": channel,
            "channel_name": channel_name, "user_id": user, "user_name": user.lower(), "command": COMMAND,
            "text": text, "api_app_id": "A0CAUSETTE", "response_url": mock.response_url(key),
            "trigger_id": f"{key}.trigger"}


# What the tests look at ----------------------------------------------------------------
def indexed(db: Database, team: str = TEAM) -> list[str]:
    """The texts of the indexed messages (one per stored row)."""
    with db.session(team, readonly=True) as s:
        return list(s.scalars(select(Message.text)))


def indexed_ids(db: Database, team: str = TEAM) -> list[str]:
    """The Slack timestamps (message ids) of the indexed messages, one per stored row."""
    with db.session(team, readonly=True) as s:
        return list(s.scalars(select(Message.external_id)))


def inbox_pending(db: Database) -> int:
    with db.session(ALL_TENANTS, readonly=True) as s:
        return int(s.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state.in_(("pending", "poison")))) or 0)


def answers(mock: SlackMock, key: str) -> list[Call]:
    """What reached the response_url `key`."""
    return [c for c in mock.of("response_url") if c.args.get("key") == key]


def wait_until(predicate: Callable[[], bool], timeout: float, pause: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
