"""Every scenario of tests/scenarios through the real Bolt app over HTTP, and the same
prompt keys as through the console."""
from __future__ import annotations

from typing import Iterator

import pytest

from bot.core import Bot
from tests.conftest import spec_file
from tests.harness.console import ConsoleHarness
from tests.harness.slack import SlackHarness
from tests.scenarios import Scenario, all_scenarios, play


@pytest.fixture
def harness(bot: Bot) -> Iterator[SlackHarness]:
    h = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    yield h
    h.close()


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario_through_slack(harness: SlackHarness, scenario: Scenario) -> None:
    transcript = play(harness, scenario)
    assert harness.server.mock.violations == []
    assert all(seen.text for step in transcript for seen in step), "every reply was really posted"


@pytest.mark.parametrize("scenario", all_scenarios()[:2], ids=lambda s: s.name)
def test_same_keys_as_console(services, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
    """The console in one workspace, Slack in another, on one database: same keys step by step."""
    bot = Bot(services)
    console = [[s.key for s in step] for step in play(ConsoleHarness(bot), scenario)]
    slack = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    try:
        keys = [[s.key for s in step] for step in play(slack, scenario)]
    finally:
        slack.close()
    assert keys == console
