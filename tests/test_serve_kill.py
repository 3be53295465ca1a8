"""Nothing acknowledged is lost: `python app.py serve` killed with SIGKILL in the middle of
a burst of signed Slack events, then started again. Every event Slack saw acknowledged is
indexed, and Slack's retries of all of them (acknowledged or not) index nothing twice."""
from __future__ import annotations

import json

import pytest

from bot.clock import SystemClock
from store import inbox as inbox_store
from store.db import Database
from tests.harness.slack import BOT_USER, TEAM
from tests.served import (Served, channel_message, inbox_pending, indexed, message_ts,  # noqa: F401 - a fixture
                          slack_api, wait_until)
from tests.slack_mock import SlackMock

BURST = 60


def _event(n: int) -> dict[str, object]:
    return channel_message(f"EvKILL{n:04d}", f"Status update {n} on the #rollout{n % 5} plan",
                           user=f"UPERSON{n % 9}", channel="CGENERAL", ts=message_ts(n, 100))


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
    before_restart = len(indexed(db))

    second = Served(db_url, slack_api.api_url)
    try:
        # Slack retries what it did not see acknowledged; the test also replays every event
        # that was acknowledged (retries of a slow ack), which must change nothing.
        for n in range(BURST):
            assert second.post_event(_event(n), retry=1 if n in acked else 0) == 200
        wait_until(lambda: len(indexed(db)) >= BURST, 60)
        texts = indexed(db)
    finally:
        second.stop()
        db.dispose()
    assert sorted(texts) == sorted(str(_event(n)["event"]["text"]) for n in range(BURST))  # type: ignore[index]
    assert before_restart <= len(acked)


def test_events_acknowledged_during_a_lock_wait_in_the_inbox(db_url: str, slack_api: SlackMock) -> None:
    """A restart with deliveries already in the inbox and nobody sending: they are processed."""
    db = Database(db_url)
    for n in range(5):
        payload = json.dumps({"body": _event(100 + n), "bot_user_id": BOT_USER})
        inbox_store.put(db, "slack", f"event:EvKILL{100 + n:04d}", "event", payload, SystemClock().now(),
                        tenant=TEAM, order_key=f"{TEAM}:CGENERAL")
    served = Served(db_url, slack_api.api_url)
    try:
        assert wait_until(lambda: len(indexed(db)) == 5, 30, pause=0.1)
        assert wait_until(lambda: inbox_pending(db) == 0, 10, pause=0.1)
    finally:
        served.stop()
        db.dispose()
