"""Every scenario of tests/scenarios through the real Bolt app over signed HTTP: each step's
replies have the keys the scenario states (the same as on the console and on Teams), one
post each."""
from __future__ import annotations

from typing import Iterator

import pytest

from bot.core import Bot
from tests.conftest import spec_file
from tests.harness.slack import SlackHarness
from tests.scenarios import Scenario, all_scenarios, play


@pytest.fixture
def harness(bot: Bot) -> Iterator[SlackHarness]:
    h = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    yield h
    h.close()


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario_through_slack(harness: SlackHarness, scenario: Scenario) -> None:
    play(harness, scenario)
    assert harness.server.mock.violations == []
