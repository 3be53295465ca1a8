"""Digest deliveries through the real Slack sender against the Web API mock, when Slack fails:
a 5xx is not "sent" (retried, then posted once), a permanent refusal is not retried, and a
process killed while Slack answers the post leaves exactly one visible post."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from sqlalchemy import select

from adapters.slack.client import Clients, Pacer, SingleToken, transient
from adapters.slack.sender import META_EVENT, SlackSender
from bot.context import Services
from bot.delivery import DeliveryFailed
from handlers.digests import engine
from bot.types import Outbound
from store.models.digests import Digest, DigestDelivery
from tests.conftest import spec_file
from tests.digest_worker import Org, add_digest, add_message, seed_org
from tests.slack_mock import LoopThread, SlackMock

ROOT = Path(__file__).resolve().parent.parent
TEAM = "T0DEMO"


@pytest.fixture
def slack_api() -> Iterator[SlackMock]:
    loop = LoopThread()
    mock = SlackMock(spec_file("slack-web-openapi-v2.json"), team=TEAM)
    loop.run(mock.start())
    yield mock
    loop.run(mock.stop())
    loop.stop()


@pytest.fixture
def org(services: Services) -> Org:
    return seed_org(services.db, tenant=TEAM, platform="slack")


def _queue(services: Services, org: Org) -> datetime:
    """One weekly #sales digest with news, claimed and queued; returns when it was due."""
    now = services.clock.now()
    digest_id = add_digest(services.db, org, now, tenant=TEAM)
    add_message(services.db, org, "sales", "sophie", "the tender is signed", now + timedelta(days=1), replies=3, tenant=TEAM)
    with services.db.session(TEAM) as s:
        due = s.get(Digest, digest_id).next_run_at  # type: ignore[union-attr]
    assert due is not None
    assert engine.claim_due(services, digest_id, TEAM, due + timedelta(minutes=1)) == "queued"
    return due + timedelta(minutes=1)


def _sender(services: Services, mock: SlackMock) -> SlackSender:
    sender = SlackSender(services, SingleToken("xoxb-test-token"), Clients(mock.api_url), Pacer(0.0), lambda event: [])
    services.deliver = sender.deliver
    return sender


def _delivery(services: Services) -> DigestDelivery:
    with services.db.session(TEAM, readonly=True) as s:
        row = s.scalar(select(DigestDelivery))
        assert row is not None
        s.expunge(row)
        return row


def test_a_500_is_not_sent_it_is_retried_and_posted_once(services: Services, org: Org, slack_api: SlackMock) -> None:
    at = _queue(services, org)
    _sender(services, slack_api)
    slack_api.fail_http("chat.postMessage", 500, times=3)  # slack_sdk retries a 500 twice, then gives up
    engine.deliver_pending(services, at)
    row = _delivery(services)
    assert (row.status, row.attempts) == ("pending", 1)
    assert slack_api.visible("sales") == [] and len(slack_api.of("chat.postMessage")) == 3
    engine.deliver_pending(services, at + timedelta(seconds=30))  # not before its backoff
    assert len(slack_api.of("chat.postMessage")) == 3
    engine.deliver_pending(services, at + timedelta(minutes=2))
    row = _delivery(services)
    assert (row.status, row.attempts) == ("sent", 2)
    posts = slack_api.visible("sales")
    assert len(posts) == 1 and posts[0]["metadata"]["event_type"] == META_EVENT
    assert posts[0]["metadata"]["event_payload"] == {"id": f"digest:{row.id}"}
    assert slack_api.violations == []


def test_a_429_waits_for_retry_after(services: Services, org: Org) -> None:
    at = _queue(services, org)

    def throttled(effects: object) -> None:
        raise DeliveryFailed("slack chat.postMessage: ratelimited", retry_after=600)

    services.deliver = throttled
    engine.deliver_pending(services, at)
    row = _delivery(services)
    assert row.status == "pending" and row.lease_until == at + timedelta(seconds=600)
    sent: list[object] = []
    services.deliver = sent.extend
    engine.deliver_pending(services, at + timedelta(seconds=599))
    assert sent == []
    engine.deliver_pending(services, at + timedelta(seconds=601))
    assert len(sent) == 1 and _delivery(services).status == "sent"


def test_slack_429_and_5xx_are_transient_refusals_are_not() -> None:
    def error(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> SlackApiError:
        response = SlackResponse(client=None, http_verb="POST", api_url="x", req_args={}, data=body,
                                 headers=headers or {}, status_code=status)
        return SlackApiError("failed", response)

    assert transient(error(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})) == (True, 30.0)
    assert transient(error(503, {"ok": False, "error": "service_unavailable"})) == (True, None)
    assert transient(error(200, {"ok": False, "error": "internal_error"})) == (True, None)
    assert transient(ConnectionResetError()) == (True, None)
    assert transient(TimeoutError()) == (True, None)
    assert transient(error(200, {"ok": False, "error": "channel_not_found"})) == (False, None)
    assert transient(error(200, {"ok": False, "error": "not_in_channel"})) == (False, None)
    assert transient(ValueError("a bug")) == (False, None)


def test_a_permanent_refusal_is_logged_and_not_retried(services: Services, org: Org, slack_api: SlackMock,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    at = _queue(services, org)
    _sender(services, slack_api)
    slack_api.failures["chat.postMessage"] = ["not_in_channel"]
    engine.deliver_pending(services, at)
    assert _delivery(services).status == "sent"  # done: retrying would be refused the same way
    engine.deliver_pending(services, at + timedelta(hours=2))
    assert len(slack_api.of("chat.postMessage")) == 1
    assert "not_in_channel" in caplog.text


def test_sender_names_only_the_effects_that_failed(services: Services, org: Org, slack_api: SlackMock) -> None:
    sender = _sender(services, slack_api)
    with services.db.session(TEAM, readonly=True):
        pass
    from bot.types import ConversationRef, Reply

    first = Outbound(Reply(text="one"), ConversationRef("slack", TEAM, "C1"))
    second = Outbound(Reply(text="two"), ConversationRef("slack", TEAM, "C2"))
    slack_api.fail_http("chat.postMessage", 503, times=3)
    with pytest.raises(DeliveryFailed) as failed:
        sender.deliver([first, second])
    assert failed.value.failed == (first,)
    assert [m["text"] for m in slack_api.visible("C2")] == ["two"]


def test_a_process_killed_while_slack_answers_leaves_one_post(services: Services, org: Org, slack_api: SlackMock,
                                                              db_url: str, tmp_path: Path) -> None:
    at = _queue(services, org)
    slack_api.delays["chat.postMessage"] = 60.0  # the post is in the channel; the answer never arrives
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([sys.executable, str(ROOT / "tests" / "digest_fault_worker.py"), db_url, at.isoformat(),
                                   slack_api.api_url], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            posted = slack_api.wait_for(lambda calls: any(c.method == "chat.postMessage" for c in calls), timeout=60)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    assert posted, log.read_text()[-3000:]
    assert len(slack_api.visible("sales")) == 1
    row = _delivery(services)
    assert (row.status, row.attempts) == ("sending", 1)  # outcome unknown to the database
    slack_api.delays.clear()
    _sender(services, slack_api)
    engine.deliver_pending(services, at + timedelta(minutes=5))  # its lease still holds
    assert len(slack_api.of("chat.postMessage")) == 1
    engine.deliver_pending(services, at + engine.LEASE + timedelta(minutes=1))
    row = _delivery(services)
    assert (row.status, row.attempts) == ("sent", 2)
    posts = slack_api.visible("sales")
    assert len(posts) == 1, posts  # one post, updated in place: never two
    assert posts[0].get("edited") is True
    assert len(slack_api.of("chat.postMessage")) == 1 and len(slack_api.of("chat.update")) == 1
    assert slack_api.violations == []
