"""Every scenario of tests/scenarios through the Teams turn logic on botbuilder's TestAdapter:
each step's replies have the keys the scenario states (the same as on the console and on
Slack), each rendered as an activity."""
from __future__ import annotations

import pytest

from bot.core import Bot
from tests.harness.teams import TeamsHarness
from tests.scenarios import Scenario, all_scenarios, play


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario_through_teams(bot: Bot, scenario: Scenario) -> None:
    harness = TeamsHarness(bot)
    play(harness, scenario)
    assert harness.adapter.activity_buffer, "nothing reached Teams"
