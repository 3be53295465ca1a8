""""Who knows" never reveals a private channel's hashtags to people outside it."""
from __future__ import annotations

from bot.core import Bot
from tests.harness.console import ConsoleHarness
from tests.scenarios import Step


def test_suggestions_hide_private_hashtags_from_non_members(bot: Bot) -> None:
    harness = ConsoleHarness(bot)
    # #direction is private (camille, sophie, thomas, julien); its past message used #réorganisation.
    outsider = harness.run_step(Step("lucas", "#engineering", "who knows reorganisations"))
    assert outsider and all("réorganisation" not in s.text.casefold() for s in outsider)
    member = harness.run_step(Step("camille", "#direction", "who knows reorganisations"))
    assert any("réorganisation" in s.text.casefold() for s in member)
