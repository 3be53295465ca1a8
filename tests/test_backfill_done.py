"""`index history` through Slack: the requester's DM ends by saying how many messages were read
and how many of them are new to the index, or that the import stopped, in their language."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from bot.core import Bot
from bot.types import Event
from tests.conftest import spec_file
from tests.harness.slack import SlackHarness, channel_id, rendered_text, user_id
from tests.scenarios import Step

SALES = channel_id("sales")


@pytest.fixture
def slack(bot: Bot) -> Iterator[SlackHarness]:
    h = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    yield h
    h.close()


def _history(h: SlackHarness, n: int) -> None:
    h.server.mock.history[SALES] = [
        {"type": "message", "user": user_id("lucas"), "text": f"message {i} about #pricing", "ts": f"17640000{i:02d}.000100"}
        for i in range(n)] + [{"type": "message", "bot_id": "B1", "text": "a bot", "ts": "1764000099.000100"}]


def _import(h: SlackHarness, who: str, text: str = "index history 30d") -> list[str]:
    """`who` types the slash command in #sales: what they are told about the import, the
    progress DM's post and each of its updates, in order (the command's own answer is the
    slash command's response)."""
    server = h.server
    first = len(server.mock.calls)
    fields = server.command_fields(user_id(who), SALES, text, channel_name="sales", user_name=who)
    assert server.post_form(fields).status == 200
    server.drain()
    assert not server.mock.violations, server.mock.violations
    return [rendered_text(c) for c in server.mock.calls[first:]
            if c.method in ("chat.postEphemeral", "chat.postMessage", "chat.update")]


def test_the_requester_is_told_how_many_messages_were_read_and_indexed(slack: SlackHarness) -> None:
    _history(slack, 5)
    told = _import(slack, "julien")  # French
    assert told[-1] == "Terminé : j'ai lu 5 messages de #sales et indexé 5 nouveaux."
    assert all("Lecture de l'historique" in t for t in told[:-1]) and len(told) == 5  # one DM, updated in place
    _history(slack, 7)
    slack.run_step(Step("julien", "dm", "lang en"))
    told = _import(slack, "julien")  # the same channel again: the first five are already indexed
    assert told[-1] == "Done: I read 7 messages of #sales and indexed 2 new ones."
    assert all("Reading the history" in t for t in told[:-1])
    assert _import(slack, "julien")[-1] == "Done: I read 7 messages of #sales and indexed 0 new ones."


def test_the_requester_is_told_when_the_import_stops(slack: SlackHarness) -> None:
    _history(slack, 5)
    slack.server.mock.failures["conversations.history"] = ["internal_error"]
    told = _import(slack, "julien")
    assert told[-1] == "J'ai arrêté de lire #sales après 0 message : Slack a refusé. Réessayez plus tard."
    sender = slack.server.adapter.sender
    inner = sender.handle
    fed: list[Event] = []

    def breaks_at_the_third(event: Event, **kw: Any) -> Any:  # a bug while reading the history
        fed.append(event)
        if len(fed) == 3:
            raise RuntimeError("boom")
        return inner(event, **kw)

    sender.handle = breaks_at_the_third
    slack.run_step(Step("julien", "dm", "lang en"))
    told = _import(slack, "julien")
    assert told[-1] == "I stopped reading #sales after 2 messages: Slack refused. Try again later."
