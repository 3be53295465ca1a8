"""Every scenario of tests/scenarios through the Teams turn logic on botbuilder's TestAdapter,
and the same prompt keys as through the console."""
from __future__ import annotations

import pytest

from bot.context import Services
from bot.core import Bot
from tests.harness.console import ConsoleHarness
from tests.harness.teams import TeamsHarness
from tests.scenarios import Scenario, all_scenarios, play


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario_through_teams(bot: Bot, scenario: Scenario) -> None:
    harness = TeamsHarness(bot)
    transcript = play(harness, scenario)
    assert harness.adapter.activity_buffer, "nothing reached Teams"
    assert all(seen.text for step in transcript for seen in step), "every reply was really rendered"


# Scenarios that never move the clock: the two harnesses can then share one database.
TIMELESS = [s for s in all_scenarios() if not any(step.advance for step in s.steps)][:2]


@pytest.mark.parametrize("scenario", TIMELESS, ids=lambda s: s.name)
def test_same_keys_as_console(services: Services, scenario: Scenario) -> None:
    """The console in its demo workspace, Teams in another tenant, one database: same keys step by step."""
    bot = Bot(services)
    console = [[s.key for s in step] for step in play(ConsoleHarness(bot), scenario)]
    teams = [[s.key for s in step] for step in play(TeamsHarness(Bot(services)), scenario)]
    assert teams == console
