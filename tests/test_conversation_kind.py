"""A conversation's kind comes from the platform before anything said there is stored.

Slack payloads that do not state it (app_mention, reactions, commands, clicks…) are checked
with conversations.info, private when Slack cannot say; a channel made private stops being
readable by outsiders; Teams channels are public only when known to be standard ones.
Slack tests run through the real Bolt app over signed HTTP, Teams ones through its harness.
"""
from __future__ import annotations

import io
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from adapters.console.messenger import ConsoleMessenger
from adapters.console.seed import seed_demo
from bot.core import Bot
from store.demo import DEMO_TENANT
from store.models.core import Conversation
from tests.conftest import spec_file
from tests.harness.slack import BOT_USER, TEAM, SlackServer, channel_id, rendered_text, seed_people, user_id
from tests.harness.teams import TENANT as TEAMS_TENANT
from tests.harness.teams import TeamsHarness
from tests.scenarios import Step

SECRET = "CSECRETPLANS"  # a C… id: private channels have them too
TOPIC = "quantumleap"
REPLY_METHODS = ("chat.postMessage", "chat.postEphemeral", "response_url", "chat.update")


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    for name in ("general", "sales", "engineering"):
        s.mock.channels[channel_id(name)] = {"id": channel_id(name), "name": name, "is_channel": True, "is_private": False}
    yield s
    s.close()
    assert s.mock.violations == [], "every Web API call must match Slack's spec"


def post_event(server: SlackServer, event: dict[str, Any]) -> None:
    assert server.post_json(server.event_payload(event)).status == 200
    server.drain()


def mention(server: SlackServer, user: str, channel: str, text: str) -> None:
    """What Slack sends for "@causette …" in a channel: an app_mention, which has no channel_type."""
    post_event(server, {"type": "app_mention", "channel": channel, "user": user_id(user),
                        "text": f"<@{BOT_USER}> {text}", "ts": server.next_ts()})


def command(server: SlackServer, user: str, text: str, channel: str = "general") -> str:
    """The text of every reply to `/causette <text>` typed by `user` in a public channel."""
    first = len(server.mock.calls)
    fields = server.command_fields(user_id(user), channel_id(channel), text, channel_name=channel, user_name=user)
    assert server.post_form(fields).status == 200
    server.drain()
    return "\n".join(rendered_text(c) for c in server.mock.calls[first:] if c.method in REPLY_METHODS)


def stored_kind(bot: Bot, channel: str, tenant: str = TEAM) -> str | None:
    with bot.services.db.session(tenant) as s:
        return s.scalar(select(Conversation.kind).where(Conversation.external_id == channel))


SAID = f"the #{TOPIC} budget cut is confidential, thanks <@{user_id('lucas')}> for the numbers"


# Slack ---------------------------------------------------------------------------------------
def test_private_channel_first_seen_through_an_app_mention_is_stored_private(server: SlackServer) -> None:
    server.mock.channels[SECRET] = {"id": SECRET, "name": "secret-plans", "is_channel": True, "is_private": True}
    mention(server, "thomas", SECRET, SAID)
    assert stored_kind(server.bot, SECRET) == "private"
    assert "budget cut" in command(server, "thomas", f"topic {TOPIC}"), "a member still finds it"
    for question in (f"topic {TOPIC}", f"who knows {TOPIC}"):
        seen = command(server, "emma", question)
        assert "budget cut" not in seen and "Thomas" not in seen, question


def test_when_slack_cannot_say_the_channel_is_private(server: SlackServer) -> None:
    server.mock.failures["conversations.info"] = ["internal_error"]
    mention(server, "thomas", SECRET, SAID)
    assert len(server.mock.of("conversations.info")) == 1
    assert stored_kind(server.bot, SECRET) == "private"
    assert "budget cut" not in command(server, "emma", f"topic {TOPIC}")


def test_a_public_channel_is_public_only_because_slack_says_so(server: SlackServer) -> None:
    server.mock.channels["COPEN"] = {"id": "COPEN", "name": "open", "is_channel": True, "is_private": False}
    mention(server, "thomas", "COPEN", SAID)
    assert stored_kind(server.bot, "COPEN") == "public"
    assert "budget cut" in command(server, "emma", f"topic {TOPIC}")


def test_kind_is_asked_once_per_process_and_never_when_the_event_says_it(server: SlackServer) -> None:
    server.mock.channels[SECRET] = {"id": SECRET, "name": "secret-plans", "is_channel": True, "is_private": True}
    mention(server, "thomas", SECRET, "first")
    mention(server, "lucas", SECRET, "second")
    post_event(server, {"type": "reaction_added", "user": user_id("lucas"), "reaction": "eyes",
                        "item": {"type": "message", "channel": SECRET, "ts": server.next_ts()}})
    assert [c.args["channel"] for c in server.mock.of("conversations.info")] == [SECRET]
    post_event(server, {"type": "message", "channel": "CTOLD", "channel_type": "group", "user": user_id("thomas"),
                        "text": SAID, "ts": server.next_ts()})
    assert [c.args["channel"] for c in server.mock.of("conversations.info")] == [SECRET]
    assert stored_kind(server.bot, "CTOLD") == "private"


def test_message_without_channel_type_is_not_assumed_public(server: SlackServer) -> None:
    server.mock.channels[SECRET] = {"id": SECRET, "name": "secret-plans", "is_channel": True, "is_private": True}
    post_event(server, {"type": "message", "channel": SECRET, "user": user_id("thomas"), "text": SAID, "ts": server.next_ts()})
    assert stored_kind(server.bot, SECRET) == "private"
    assert "budget cut" not in command(server, "emma", f"topic {TOPIC}")


def test_a_channel_stored_public_by_a_guess_is_checked_again(server: SlackServer) -> None:
    """Stored "public" by a version that guessed it: this process asks Slack before using it."""
    with server.bot.services.db.session(TEAM) as s:
        s.add(Conversation(external_id=SECRET, name="secret-plans", kind="public"))
    server.mock.channels[SECRET] = {"id": SECRET, "name": "secret-plans", "is_channel": True, "is_private": True}
    fields = server.command_fields(user_id("thomas"), SECRET, f"topic {TOPIC}", channel_name="secret-plans", user_name="thomas")
    assert server.post_form(fields).status == 200
    server.drain()
    assert stored_kind(server.bot, SECRET) == "private"


def test_a_channel_made_private_is_no_longer_readable_by_outsiders(server: SlackServer) -> None:
    project = "CPROJECT"
    server.mock.channels[project] = {"id": project, "name": "project", "is_channel": True, "is_private": False}
    server.mock.members[project] = [user_id("thomas"), user_id("lucas"), BOT_USER]
    post_event(server, {"type": "message", "channel": project, "channel_type": "channel", "user": user_id("thomas"),
                        "text": SAID, "ts": server.next_ts()})
    assert "budget cut" in command(server, "emma", f"topic {TOPIC}"), "public while it was public"
    server.mock.channels[project]["is_private"] = True
    post_event(server, {"type": "message", "subtype": "channel_convert_to_private", "channel": project, "channel_type": "group",
                        "user": user_id("thomas"), "text": "made this channel *private*.", "ts": server.next_ts()})
    assert stored_kind(server.bot, project) == "private"
    assert "budget cut" not in command(server, "emma", f"topic {TOPIC}")
    assert "budget cut" in command(server, "lucas", f"topic {TOPIC}"), "a member who never spoke there still reads it"


def test_made_public_again_does_not_open_what_was_said_in_private(server: SlackServer) -> None:
    server.mock.channels[SECRET] = {"id": SECRET, "name": "secret-plans", "is_channel": True, "is_private": True}
    mention(server, "thomas", SECRET, SAID)
    post_event(server, {"type": "message", "subtype": "channel_convert_to_public", "channel": SECRET, "channel_type": "channel",
                        "user": user_id("thomas"), "text": "made this channel *public*.", "ts": server.next_ts()})
    assert stored_kind(server.bot, SECRET) == "private"
    assert "budget cut" not in command(server, "emma", f"topic {TOPIC}")


# Teams ---------------------------------------------------------------------------------------
@pytest.fixture
def teams(bot: Bot) -> TeamsHarness:
    return TeamsHarness(bot)


def teams_channel_post(harness: TeamsHarness, channel: str, *, membership: str | None, team: str | None = None) -> None:
    activity = harness.activity(Step("thomas", "#general", SAID.replace(f"<@{user_id('lucas')}>", "@lucas"), command=False))
    cid = f"19:{channel}@thread.tacv2"
    activity["conversation"]["id"] = cid
    activity["channelData"]["channel"] = {"id": cid, "name": channel}
    if membership is not None:
        activity["channelData"]["channel"]["membershipType"] = membership
    activity["channelData"]["team"] = {"id": team or "19:team-x@thread.tacv2"}
    harness.send(activity)


def teams_topic(harness: TeamsHarness, user: str) -> str:
    return "\n".join(seen.text for seen in harness.run_step(Step(user, "#general", f"topic {TOPIC}")))


def test_teams_channel_of_unknown_membership_is_private(teams: TeamsHarness) -> None:
    teams_channel_post(teams, "undescribed", membership=None)
    assert stored_kind(teams.bot, "19:undescribed@thread.tacv2", TEAMS_TENANT) == "private"
    assert "budget cut" not in teams_topic(teams, "emma")


@pytest.mark.parametrize("membership", ["private", "shared"])
def test_teams_private_and_shared_channels_are_private(teams: TeamsHarness, membership: str) -> None:
    teams_channel_post(teams, membership, membership=membership)
    assert stored_kind(teams.bot, f"19:{membership}@thread.tacv2", TEAMS_TENANT) == "private"
    assert "budget cut" not in teams_topic(teams, "emma")


def test_teams_standard_and_general_channels_are_public(teams: TeamsHarness) -> None:
    teams_channel_post(teams, "standard", membership="standard")
    teams_channel_post(teams, "team-y", membership=None, team="19:team-y@thread.tacv2")  # General: its id is the team's
    assert stored_kind(teams.bot, "19:standard@thread.tacv2", TEAMS_TENANT) == "public"
    assert stored_kind(teams.bot, "19:team-y@thread.tacv2", TEAMS_TENANT) == "public"
    assert "budget cut" in teams_topic(teams, "emma")


def test_teams_channel_list_can_confirm_a_standard_channel(teams: TeamsHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from botbuilder.schema.teams import ChannelInfo

    from adapters.teams.turn import TeamsTurn

    asked: list[str] = []

    async def channels(_turn: Any, team_id: str) -> list[ChannelInfo]:  # the Bot Connector's team channel list
        asked.append(team_id)
        return [ChannelInfo(id="19:listed@thread.tacv2", name="listed", type="standard"),
                ChannelInfo(id="19:hidden@thread.tacv2", name="hidden", type="private")]

    monkeypatch.setattr(TeamsTurn, "_team_channels", staticmethod(channels))
    for name in ("listed", "hidden", "listed"):
        teams_channel_post(teams, name, membership=None)
    assert stored_kind(teams.bot, "19:listed@thread.tacv2", TEAMS_TENANT) == "public"
    assert stored_kind(teams.bot, "19:hidden@thread.tacv2", TEAMS_TENANT) == "private"
    assert asked == ["19:team-x@thread.tacv2"], "the team's channel list is read once"


# Console -------------------------------------------------------------------------------------
def test_console_demo_private_channel_is_private(bot: Bot) -> None:
    seed_demo(bot)
    messenger = ConsoleMessenger(bot, DEMO_TENANT, "sophie", out=io.StringIO())
    messenger.handle_line("/in direction")
    assert messenger.conversation_ref().kind == "private"
    messenger.handle_line("/in general")
    assert messenger.conversation_ref().kind == "public"
