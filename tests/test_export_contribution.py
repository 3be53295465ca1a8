"""`export my data` includes the contribution loop: own ideas (anonymous ones too), votes, kudos."""
from __future__ import annotations

import json

from bot.core import Bot
from bot.types import Outbound
from tests.harness.console import ConsoleHarness
from tests.scenarios import Step


def test_export_lists_ideas_votes_and_kudos(bot: Bot) -> None:
    harness = ConsoleHarness(bot)
    exported: list[bytes] = []
    original = harness.console.deliver

    def deliver(effects: list) -> None:
        exported.extend(e.reply.attachment[1] for e in effects if isinstance(e, Outbound) and e.reply.attachment)
        original(effects)

    harness.console.deliver = deliver  # type: ignore[method-assign]
    harness.run_step(Step("lea", "#ideas", "idea anon Shared badges for all sites #badges"))
    harness.run_step(Step("lea", "#general", "thanks @thomas for the kubernetes runbooks #kubernetes"))
    harness.run_step(Step("thomas", "dm", "export my data"))
    harness.run_step(Step("lea", "dm", "export my data"))
    thomas, lea = (json.loads(blob) for blob in exported[-2:])
    assert [k["reason"] for k in thomas["kudos_received"]] and "runbooks" in thomas["kudos_received"][0]["reason"]
    assert thomas["ideas"] == []
    assert [i["title"] for i in lea["ideas"]] == ["Shared badges for all sites"] and lea["ideas"][0]["anonymous"]
    assert lea["kudos_given"][0]["to"] == "Thomas Thomas"
