"""The acknowledgement's own path: a slash command of ours and the events the Bolt app would
only store are stored without Bolt's dispatch once Bolt has said which bot we are (one
workspace's token), with the same row, the same answer and Bolt's "ignore our own events"
rule; everything else still goes through Bolt."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from bot.core import Bot
from bot.types import IncomingMessage
from store.db import ALL_TENANTS, Database
from store.models.inbox import InboxEvent
from tests.conftest import spec_file
from tests.harness.slack import BOT_USER, SlackServer, channel_id, record_events, seed_people, user_id


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield s
    s.close()
    assert s.mock.violations == [], "every Web API call must match Slack's spec"


def _dispatches(server: SlackServer) -> list[str]:
    """Counts the requests Bolt dispatches (their payload type)."""
    seen: list[str] = []
    bolt = server.runtime.bolt
    original = bolt.async_dispatch

    async def counting(request: Any) -> Any:
        seen.append(str(request.body.get("type") or request.body.get("command")))
        return await original(request)

    bolt.async_dispatch = counting  # type: ignore[method-assign]
    return seen


def _rows(db: Database) -> list[InboxEvent]:
    with db.session(ALL_TENANTS, readonly=True) as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_commands_and_events_are_stored_without_bolt_once_bolt_said_who_we_are(server: SlackServer, bot: Bot) -> None:
    events = record_events(server, IncomingMessage)
    dispatched = _dispatches(server)
    thomas, general = user_id("thomas"), channel_id("general")
    first = server.post_form(server.command_fields(thomas, general, "help"))
    second = server.post_form(server.command_fields(thomas, general, "help"))
    message = server.post_json(server.event_payload({"type": "message", "channel": general, "channel_type": "channel",
                                                     "user": thomas, "text": "the pricing page", "ts": server.next_ts()}))
    server.drain()
    assert [r.status for r in (first, second, message)] == [200, 200, 200]
    assert second.body == first.body == b""
    assert dispatched == ["/causette"], "only the first request went through Bolt (its authorization: auth.test)"
    rows = _rows(bot.services.db)
    assert [(r.kind, r.state) for r in rows] == [("command", "done"), ("command", "done"), ("event", "done")]
    payloads = [json.loads(r.payload) for r in rows]
    assert [p["bot_user_id"] for p in payloads] == [BOT_USER] * 3, "the worker knows which bot we are either way"
    assert rows[2].order_key == rows[2].tenant + ":" + general
    assert len([e for e in events if e.text == "help"]) == 2
    assert len(server.mock.of("response_url")) == 2, "both commands answered"


def test_our_own_messages_are_acknowledged_and_not_stored(server: SlackServer, bot: Bot) -> None:
    general = channel_id("general")
    server.post_form(server.command_fields(user_id("thomas"), general, "help"))  # Bolt learns who we are
    server.drain()
    before = len(_rows(bot.services.db))
    dispatched = _dispatches(server)
    ours = server.post_json(server.event_payload({"type": "message", "channel": general, "channel_type": "channel",
                                                  "user": BOT_USER, "bot_id": "BCAUSETTE", "text": "a reply of ours",
                                                  "ts": server.next_ts()}))
    by_bot_id = server.post_json(server.event_payload({"type": "message", "subtype": "bot_message", "channel": general,
                                                       "bot_id": "BCAUSETTE", "text": "posted as the app",
                                                       "ts": server.next_ts()}))
    joined = server.post_json(server.event_payload({"type": "member_joined_channel", "channel": general,
                                                    "user": BOT_USER, "channel_type": "C"}))
    server.drain()
    assert (ours.status, by_bot_id.status, joined.status) == (200, 200, 200)
    assert dispatched == []
    kinds = [json.loads(r.payload)["body"]["event"]["type"] for r in _rows(bot.services.db)[before:]]
    assert kinds == ["member_joined_channel"], "Bolt's rule: our own events are dropped, our joins are kept"


def test_interactions_and_other_commands_still_go_through_bolt(server: SlackServer) -> None:
    server.post_form(server.command_fields(user_id("thomas"), channel_id("general"), "help"))
    dispatched = _dispatches(server)
    other = server.command_fields(user_id("thomas"), channel_id("general"), "x") | {"command": "/someone-else"}
    assert server.post_form(other).status == 404  # Bolt: no listener
    assert server.post_json({"type": "url_verification", "challenge": "c1", "token": "x"}).body == b'{"challenge": "c1"}'
    assert server.post_json(server.event_payload({"type": "channel_rename", "channel": {"id": "C1"}})).status == 200
    server.drain()
    assert dispatched == ["/someone-else", "url_verification", "event_callback"]


def test_a_failed_write_is_not_acknowledged_on_the_direct_path(server: SlackServer, bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    server.post_form(server.command_fields(user_id("thomas"), channel_id("general"), "help"))
    server.drain()
    adapter = server.adapter

    def broken(*_args: Any, **_kwargs: Any) -> bool:
        raise RuntimeError("disk full")

    monkeypatch.setattr(adapter.pipeline, "put_now", lambda *a, **k: None)  # the turn is taken: a thread writes
    monkeypatch.setattr(adapter.pipeline, "put", broken)
    event = server.post_json(server.event_payload({"type": "message", "channel": channel_id("general"),
                                                   "channel_type": "channel", "user": user_id("thomas"),
                                                   "text": "lost?", "ts": server.next_ts()}))
    assert event.status == 503, "Slack sends it again"
