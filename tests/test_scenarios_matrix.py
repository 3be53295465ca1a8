"""Every scenario of tests/scenarios through Matrix: real people's clients (matrix-nio) on a
real Synapse started by the suite, Causette's Matrix adapter answering (tests/harness/matrix.py).
Each step's replies have the keys the scenario states (the same as on the console, Slack and
Teams), and each reply reached the person's client in the room it was meant for. Buttons are
pressed and forms sent as a Matrix person does (tests/harness/matrix.py): no scenario skipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.core import Bot
from tests.harness.matrix import MatrixHarness, server_time_as_test_clock
from tests.matrix.world import Humans, World
from tests.scenarios import Scenario, all_scenarios, play


# What the Matrix adapter does not do yet, seen by these tests (strict: once fixed, remove the line).
ADAPTER_GAPS: dict[str, str] = {}


def _cases() -> list[object]:
    return [pytest.param(s, marks=pytest.mark.xfail(reason=ADAPTER_GAPS[s.name], strict=True)) if s.name in ADAPTER_GAPS
            else s for s in all_scenarios()]


@pytest.mark.parametrize("scenario", _cases(), ids=lambda s: getattr(s, "name", ""))
def test_scenario_through_matrix(bot: Bot, clock: FixedClock, scenario: Scenario, matrix_world: World,
                                 matrix_humans: Humans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server_time_as_test_clock(monkeypatch, clock)
    harness = MatrixHarness(bot, matrix_world, matrix_humans, tmp_path / "bot-store")
    try:
        play(harness, scenario)
    finally:
        harness.close()
    replies = sum(1 for step in scenario.steps for _ in (step.expected_on("matrix") or ()))
    assert len(harness.received) >= replies and (replies == 0 or harness.received), "nothing reached Matrix"
