"""Every scenario of tests/scenarios through Matrix: real people's clients (matrix-nio) on a
real Synapse started by the suite, Causette's Matrix adapter answering (tests/harness/matrix.py).
Each step's replies have the keys the scenario states (the same as on the console, Slack and
Teams), and each reply reached the person's client in the room it was meant for."""
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
# Steps that press a button or submit a form (Step.press / Step.submit): on Matrix that is typing the
# card's command and answering the guided exchange, which this harness does not drive yet (the
# adapter's side is tested in tests/test_matrix_processor.py and tests/test_matrix_forms.py).
NOT_DRIVEN = "the Matrix harness does not yet press buttons or answer guided forms (Step.press / Step.submit)"


def _cases() -> list[object]:
    cases: list[object] = []
    for s in all_scenarios():
        if any(step.press or step.submit for step in s.steps):
            cases.append(pytest.param(s, marks=pytest.mark.skip(reason=NOT_DRIVEN)))
        elif s.name in ADAPTER_GAPS:
            cases.append(pytest.param(s, marks=pytest.mark.xfail(reason=ADAPTER_GAPS[s.name], strict=True)))
        else:
            cases.append(s)
    return cases


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
