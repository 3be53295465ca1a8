"""A signed request replayed within Slack's five-minute window, or a Teams activity delivered
again, has its effect once: commands and interactions are known by their trigger_id (view
submissions without one by view id and hash), as events are by their event_id."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from bot.core import Bot
from bot.types import IncomingMessage
from store.models.contribution import Idea
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackServer, channel_id, record_events, seed_people, user_id
from tests.harness.teams import TeamsHarness
from tests.scenarios import Step

REPLY_METHODS = ("chat.postMessage", "chat.postEphemeral", "response_url", "chat.update", "views.open")


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    s.mock.channels[channel_id("general")] = {"id": channel_id("general"), "name": "general", "is_channel": True, "is_private": False}
    yield s
    s.close()
    assert s.mock.violations == [], "every Web API call must match Slack's spec"


@pytest.fixture
def handled(server: SlackServer) -> list[IncomingMessage]:
    return record_events(server, IncomingMessage)


def replies(server: SlackServer) -> int:
    return len([c for c in server.mock.calls if c.method in REPLY_METHODS])


def ideas(bot: Bot) -> int:
    with bot.services.db.session(TEAM) as s:
        return int(s.scalar(select(func.count(Idea.id))) or 0)


def replayed(server: SlackServer, send: Any, times: int = 3) -> tuple[int, int]:
    """Send once and count the replies; send `times - 1` more identical copies: (first, total)."""
    assert send().status == 200
    server.drain()
    first = replies(server)
    for _ in range(times - 1):
        assert send().status == 200  # acked like any request…
    server.drain()
    return first, replies(server)  # …but without a second effect


def interactive(server: SlackServer, kind: str, user: str = "emma", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "team": {"id": TEAM, "domain": "demo"}, "api_app_id": "A0CAUSETTE", "token": "legacy",
            "user": {"id": user_id(user), "username": user, "team_id": TEAM}, "trigger_id": f"{kind}.777.trigger",
            "response_url": server.mock.response_url(kind), **extra}


def test_slash_command_replayed_three_times_creates_one_idea(server: SlackServer) -> None:
    fields = server.command_fields(user_id("thomas"), channel_id("general"), "idea Car pooling for client visits #travel",
                                   channel_name="general", user_name="thomas")
    first, total = replayed(server, lambda: server.post_form(fields))
    assert ideas(server.bot) == 1
    assert first >= 1 and total == first


def test_the_same_command_typed_again_is_not_a_replay(server: SlackServer, handled: list[IncomingMessage]) -> None:
    for _ in range(2):  # each invocation has its own trigger_id
        fields = server.command_fields(user_id("thomas"), channel_id("general"), "help", channel_name="general", user_name="thomas")
        assert server.post_form(fields).status == 200
        server.drain()
    assert [m.text for m in handled] == ["help", "help"]


def test_button_click_replayed_votes_once(server: SlackServer) -> None:
    fields = server.command_fields(user_id("thomas"), channel_id("general"), "idea Car pooling for client visits #travel",
                                   channel_name="general", user_name="thomas")
    server.post_form(fields)
    server.drain()
    with server.bot.services.db.session(TEAM) as s:
        idea_id = s.scalar(select(Idea.id))
    click = interactive(server, "block_actions", channel={"id": channel_id("general"), "name": "general"},
                        container={"type": "message", "message_ts": "1763000000.000200"},
                        message={"ts": "1763000000.000200", "text": "card"},
                        actions=[{"type": "button", "action_id": "causette_action:0", "block_id": "b", "value": f"idea vote {idea_id}",
                                  "text": {"type": "plain_text", "text": "Vote"}, "action_ts": "1"}])
    before = replies(server)
    first, total = replayed(server, lambda: server.post_interactive(click))
    assert first > before and total == first, "a replayed click would answer 'already voted'"
    with server.bot.services.db.session(TEAM) as s:
        assert s.scalar(select(Idea.vote_count).where(Idea.id == idea_id)) == 1


def test_modal_submission_replayed_runs_once(server: SlackServer, handled: list[IncomingMessage]) -> None:
    meta = json.dumps({"cmd": "help", "ch": channel_id("general"), "k": "public"})
    payload = interactive(server, "view_submission", view={
        "id": "V1", "hash": "1763.abc", "type": "modal", "callback_id": "causette_form", "private_metadata": meta,
        "state": {"values": {"topic": {"value": {"type": "plain_text_input", "value": "kubernetes"}}}}})
    replayed(server, lambda: server.post_interactive(payload))
    assert [m.via for m in handled] == ["form"]


def test_modal_submission_without_trigger_id_is_known_by_view_id_and_hash(server: SlackServer, handled: list[IncomingMessage]) -> None:
    meta = json.dumps({"cmd": "help", "ch": channel_id("general"), "k": "public"})
    payload = interactive(server, "view_submission", view={
        "id": "V2", "hash": "1763.def", "type": "modal", "callback_id": "causette_form", "private_metadata": meta,
        "state": {"values": {}}})
    del payload["trigger_id"]
    replayed(server, lambda: server.post_interactive(payload))
    payload["view"] = {**payload["view"], "hash": "1763.ghi"}  # submitted again after an edit: a new state
    server.post_interactive(payload)
    server.drain()
    assert [m.via for m in handled] == ["form", "form"]


def test_shortcut_replayed_runs_once(server: SlackServer, handled: list[IncomingMessage]) -> None:
    payload = interactive(server, "message_action", callback_id="causette_ask",
                          channel={"id": channel_id("general"), "name": "general"}, message_ts="1763000000.000300",
                          message={"type": "message", "user": user_id("lucas"), "ts": "1763000000.000300",
                                   "text": "How do we size pods?"})
    replayed(server, lambda: server.post_interactive(payload))
    assert [m.via for m in handled] == ["shortcut"]


def test_teams_activity_replayed_has_one_effect(bot: Bot) -> None:
    harness = TeamsHarness(bot)
    harness.run_step(Step("thomas", "#general", "idea Car pooling for client visits #travel"))
    with bot.services.db.session("tenant-demo") as s:
        idea_id = s.scalar(select(Idea.id).order_by(Idea.id.desc()))
    click = harness.activity(Step("emma", "dm", ""))
    click["value"] = {"command": f"idea vote {idea_id}"}
    harness.recorded = []
    for _ in range(3):
        harness.send(click)
    assert [o.reply.key for o in harness.recorded].count("idea.voted") == 1
    assert "idea.already_voted" not in [o.reply.key for o in harness.recorded]
    with bot.services.db.session("tenant-demo") as s:
        assert s.scalar(select(Idea.vote_count).where(Idea.id == idea_id)) == 1


def test_teams_message_ids_are_unique_per_conversation_only(bot: Bot) -> None:
    """Two conversations may hold messages with the same id: neither is taken for a replay."""
    harness = TeamsHarness(bot)
    seen: list[str] = []
    for user in ("thomas", "emma"):
        activity = harness.activity(Step(user, "dm", "help"))
        activity["id"] = "1763000000000"
        harness.recorded = []
        harness.send(activity)
        seen += [o.reply.key for o in harness.recorded]
    assert len(seen) == 2
