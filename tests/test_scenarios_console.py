"""Every scenario of tests/scenarios through the console messenger."""
from __future__ import annotations

import pytest

from bot.core import Bot
from tests.harness.console import ConsoleHarness
from tests.scenarios import Scenario, all_scenarios, play


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario_through_console(bot: Bot, scenario: Scenario) -> None:
    play(ConsoleHarness(bot), scenario)
