"""Addressing the bot anywhere in a message, on every adapter: `hello @causette who knows
pricing?` runs the lookup; the bot's own mention is removed wherever it sits; broadcasts
(`<!channel>`, `@here`, Teams team mentions) are neither commands nor pings."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from bot.addressing import command_text
from bot.core import Bot
from handlers import build_registry
from store.models.social import Message
from tests.conftest import spec_file
from tests.harness.console import ConsoleHarness
from tests.harness.slack import BOT_USER, TEAM, SlackHarness, rendered_text, user_id
from tests.harness.teams import BOT_ID, TeamsHarness
from tests.scenarios import Seen, Step

UNKNOWN = {"error.unknown_command", "error.unknown_command_no_hint"}


# The rule itself ------------------------------------------------------------------
@pytest.mark.parametrize(("text", "at", "expected"), [
    ("hello who knows pricing?", 6, "who knows pricing?"),       # after the mention
    ("who knows pricing, ?", 18, "who knows pricing"),            # before it: "who knows pricing, @causette?"
    ("bonjour, qui connaît le pricing", 9, "qui connaît le pricing"),
    ("help?", 0, "help"),                                          # a trailing ? does not stop a command
    ("?", 0, "?"),                                                 # "@causette ?" is still help
    ("@channel  help", 9, "help"),                                 # "<!channel> @causette help"
    ("@here who knows pricing", 0, "who knows pricing"),
    ("who knows pricing @channel", 0, "who knows pricing"),
    ("/causette help", None, "help"),
    (": help", 0, "help"),                                         # "@causette: help"
    ("hey", 3, "hey"),                                             # no command: the whole text, for the hint
    ("hey  there", 3, "hey there"),
    ("", 0, ""),
])
def test_command_text(text: str, at: int | None, expected: str) -> None:
    registry = build_registry()
    assert command_text(text, at, registry.match, "/causette") == expected


# Console ----------------------------------------------------------------------
def test_console_mid_sentence(bot: Bot) -> None:
    h = ConsoleHarness(bot)
    said = lambda text, where="#sales": h.run_step(Step("james", where, text, command=False))  # noqa: E731
    for text in ("hello @causette who knows pricing?", "who knows pricing, @causette?", "Bonjour @Causette, who knows pricing"):
        seen = said(text)
        assert [s.key for s in seen] == ["expert.results"], text
        assert "pricing" in seen[0].text
    assert [s.key for s in said("hello @causette who knows pricing", "dm")] == ["expert.results"]
    assert [s.key for s in said("@channel @causette help")] == ["help.overview"]
    assert {s.key for s in said("hey @causette")} <= UNKNOWN and said("hey @causette")
    assert [s.key for s in said("@causette")] == ["error.empty_command"]
    assert said("hello everyone, pricing is up") == []  # not addressed: nothing answered


# Slack ------------------------------------------------------------------------
@pytest.fixture
def slack(bot: Bot) -> Iterator[SlackHarness]:
    h = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    yield h
    h.close()


def _slack_say(h: SlackHarness, user: str, text: str) -> tuple[list[Seen], list[Any], str]:
    """A channel message as Slack delivers it when it mentions the bot: app_mention and message."""
    server, mock = h.server, h.server.mock
    h.recorded = []
    first = len(mock.calls)
    ts = server.next_ts()
    base = {"channel": "CSALES", "user": user_id(user), "text": text, "ts": ts}
    for event in ({"type": "app_mention", **base}, {"type": "message", "channel_type": "channel", **base}):
        assert server.post_json(server.event_payload(event)).status == 200
    server.drain()
    assert not mock.violations, mock.violations
    calls = [c for c in mock.calls[first:] if c.method.startswith("chat.")]
    return [Seen(o.reply.key, "") for o in h.recorded], calls, ts


def test_slack_mid_sentence(slack: SlackHarness, bot: Bot) -> None:
    seen, calls, ts = _slack_say(slack, "james", f"hello <@{BOT_USER}> who knows pricing?")
    assert [s.key for s in seen] == ["expert.results"]
    assert [c.method for c in calls] == ["chat.postEphemeral"]
    assert "pricing" in rendered_text(calls[0]) and "know that command" not in rendered_text(calls[0])
    with bot.services.db.session(TEAM) as s:
        stored = s.scalars(select(Message.text).where(Message.external_id == ts)).one()
    assert stored.split() == ["hello", "who", "knows", "pricing?"]  # the bot's own mention is gone

    seen, calls, _ = _slack_say(slack, "james", f"who knows pricing, <@{BOT_USER}>?")
    assert [s.key for s in seen] == ["expert.results"]

    through_harness = slack.run_step(Step("james", "#sales", "Bonjour @causette qui connaît le pricing ?", command=False))
    assert [s.key for s in through_harness] == ["expert.results"]


def test_slack_broadcasts_stay_inert(slack: SlackHarness, bot: Bot) -> None:
    seen, calls, ts = _slack_say(slack, "james", f"<!channel> <@{BOT_USER}> help")
    assert [s.key for s in seen] == ["help.overview"]
    assert [c.method for c in calls] == ["chat.postEphemeral"]
    posted = json.dumps([c.args for c in calls])
    assert "<!channel>" not in posted and "<!here>" not in posted and "<!everyone>" not in posted
    with bot.services.db.session(TEAM) as s:
        stored = s.scalars(select(Message.text).where(Message.external_id == ts)).one()
    assert stored.split() == ["@channel", "help"]  # kept as words, never a ping

    seen, calls, _ = _slack_say(slack, "james", f"<!here> quick question <@{BOT_USER}>")
    assert {s.key for s in seen} <= UNKNOWN and seen
    assert "help channel" not in rendered_text(calls[0])  # the broadcast is no typo of a command

    seen, calls, _ = _slack_say(slack, "james", f"hey <@{BOT_USER}>")
    assert {s.key for s in seen} <= UNKNOWN and seen
    assert [c.method for c in calls] == ["chat.postEphemeral"]


# Teams ------------------------------------------------------------------------
def _teams_say(h: TeamsHarness, user: str, parts: list[tuple[str, dict[str, Any] | None]]) -> tuple[list[str], list[Any]]:
    """A channel message made of text pieces and `<at>` mentions (the entity's `mentioned`)."""
    activity = h.activity(Step(user, "#sales", "", command=False))
    text, entities = "", []
    for piece, mentioned in parts:
        if mentioned is None:
            text += piece
        else:
            at = f"<at>{piece}</at>"
            text += at
            entities.append({"type": "mention", "text": at, "mentioned": mentioned})
    activity.update(text=text, entities=entities)
    h.recorded = []
    first = len(h.adapter.activity_buffer)
    h.send(activity)
    return [o.reply.key for o in h.recorded], list(h.adapter.activity_buffer)[first:]


BOT = {"id": BOT_ID, "name": "Causette"}


def test_teams_mid_sentence(bot: Bot) -> None:
    h = TeamsHarness(bot)
    keys, sent = _teams_say(h, "james", [("<p>hello ", None), ("Causette", BOT), (" who knows pricing?</p>", None)])
    assert keys == ["expert.results"]
    assert sent and "know that command" not in json.dumps([a.as_dict() for a in sent])
    keys, _ = _teams_say(h, "james", [("who knows pricing, ", None), ("Causette", BOT), ("?", None)])
    assert keys == ["expert.results"]
    keys, _ = _teams_say(h, "james", [("hey ", None), ("Causette", BOT)])
    assert set(keys) <= UNKNOWN and keys


def test_teams_team_mention_stays_inert(bot: Bot) -> None:
    h = TeamsHarness(bot)
    team = {"id": "19:sales-team@thread.skype", "name": "Sales", "type": "team"}
    keys, sent = _teams_say(h, "james", [("Sales", team), (" ", None), ("Causette", BOT), (" help", None)])
    assert keys == ["help.overview"]
    pinged = {e.mentioned.id for a in sent for e in (a.entities or []) if getattr(e, "type", "") == "mention"}
    assert pinged <= {"29:james"}  # at most the asker, told where the private answer went; never the team
    assert all("19:sales-team" not in json.dumps(a.as_dict()) for a in sent)
