"""Socket Mode: with SLACK_APP_TOKEN the same Bolt app is fed over a WebSocket (the mock's),
acks each envelope at once, and deduplicates Slack's retries (`retry_attempt`)."""
from __future__ import annotations

from typing import Iterator

import pytest

from bot.core import Bot
from tests.conftest import spec_file
from tests.harness.slack import SlackServer, channel_id, user_id


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"), socket_mode=True)
    assert s.mock.wait_for(lambda calls: any(c.method == "apps.connections.open" for c in calls)), "connected"
    yield s
    s.close()
    assert s.mock.violations == []


def test_socket_mode_command_and_retried_event(server: SlackServer) -> None:
    mock = server.mock
    assert mock.of("apps.connections.open")[0].token == "xapp-1-test"
    assert mock.wait_for(lambda calls: bool(mock.sockets)), "websocket open"
    fields = server.command_fields(user_id("thomas"), channel_id("general"), "help")
    server.loop.run(mock.push({"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
                               "payload": fields}))
    assert mock.wait_for(lambda calls: any(c.method == "socket_ack" for c in calls)), "the envelope is acked"
    event = {"type": "message", "channel": "DTHOMAS", "channel_type": "im", "user": user_id("thomas"), "text": "help",
             "ts": server.next_ts()}
    payload = server.event_payload(event, event_id="EvSOCKET1")
    for attempt in (0, 1):
        server.loop.run(mock.push({"envelope_id": f"env-ev{attempt}", "type": "events_api", "accepts_response_payload": False,
                                   "retry_attempt": attempt, "retry_reason": "timeout" if attempt else "", "payload": payload}))
    assert mock.wait_for(lambda calls: sum(c.method == "socket_ack" for c in calls) == 3)
    server.drain()
    assert sorted(c.args["envelope_id"] for c in mock.of("socket_ack")) == ["env-1", "env-ev0", "env-ev1"]
    assert len(mock.of("response_url")) == 1, "the command answered through its response_url"
    dm_replies = [c for c in mock.of("chat.postMessage") if c.args["channel"] == "DTHOMAS"]
    assert len(dm_replies) == 1, "the retried event was handled once"
