"""Console lines go through the durable inbox: answered once, and a line a killed console
left unanswered is answered when the next console starts."""
from __future__ import annotations

import io
import json

from sqlalchemy import func, select

from adapters.console.messenger import ConsoleMessenger, message_from_json, message_json
from adapters.console.seed import seed_demo
from bot.core import Bot
from bot.types import ConversationRef, IncomingMessage, UserRef
from store import inbox as inbox_store
from store.demo import DEMO_TENANT
from store.models.core import PersonSkill
from store.models.inbox import InboxEvent


def _console(bot: Bot, out: io.StringIO) -> ConsoleMessenger:
    return ConsoleMessenger(bot, DEMO_TENANT, "sophie", out=out)


def test_a_line_is_written_then_answered_once(bot: Bot) -> None:
    seed_demo(bot)
    out = io.StringIO()
    console = _console(bot, out)
    console.handle_line("/causette skills add pétanque")
    assert "pétanque" in out.getvalue()
    with bot.services.db.session("*", readonly=True) as s:
        rows = s.execute(select(InboxEvent.platform, InboxEvent.state)).all()
    assert rows == [("console", "done")]
    with bot.services.db.session(DEMO_TENANT, readonly=True) as s:
        before = s.scalar(select(func.count(PersonSkill.id)))
    console.inbox.drain(5)  # nothing left to do: the skill is not added twice
    with bot.services.db.session(DEMO_TENANT, readonly=True) as s:
        assert s.scalar(select(func.count(PersonSkill.id))) == before


def test_a_line_left_by_a_killed_console_is_answered_at_the_next_start(bot: Bot) -> None:
    seed_demo(bot)
    clock = bot.services.clock
    msg = IncomingMessage(id="left-1", text="skills add origami", sender=UserRef("console", DEMO_TENANT, "sophie", "Sophie"),
                          conversation=ConversationRef("console", DEMO_TENANT, "dm-sophie", "dm", name="dm-sophie"),
                          addressed=True, sent_at=clock.now(), via="command")
    inbox_store.put(bot.services.db, "console", "dead-run:left-1", "message", message_json(msg), clock.now(),
                    tenant=DEMO_TENANT, order_key="dm-sophie")
    out = io.StringIO()
    assert _console(bot, out).run(io.StringIO("")) == 0
    assert "origami" in out.getvalue()
    assert inbox_store.stats(bot.services.db, clock.now()).pending == 0


def test_the_inbox_keeps_every_field_of_a_line() -> None:
    msg = IncomingMessage(id="7", text="⟦@lea⟧ merci", sender=UserRef("console", "t", "sophie", "Sophie"),
                          conversation=ConversationRef("console", "t", "sales", "private", name="sales"), addressed=True,
                          mentions=(UserRef("console", "t", "lea", "Léa"),), hashtags=("merci",), via="form",
                          form_values={"title": "x"})
    assert message_from_json(message_json(msg)) == msg
    assert json.loads(message_json(msg))["conversation"]["kind"] == "private"
