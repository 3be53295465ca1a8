"""A refusal that echoes what someone typed never turns a mention in it into a ping."""
from __future__ import annotations

from bot.core import Bot
from bot.text import mention_marker, split_markers
from bot.types import ConversationRef, IncomingMessage, Outbound, UserRef
from tests.harness.console import ConsoleHarness


def test_unknown_help_topic_echo_has_no_mention_marker(bot: Bot) -> None:
    ConsoleHarness(bot)  # seeds the demo organisation
    sender = UserRef("console", "console:demo", "lucas", "Lucas")
    conv = ConversationRef("console", "console:demo", "engineering", "public", name="engineering")
    msg = IncomingMessage(id="m1", text=f"help {mention_marker('sophie')} now", sender=sender, conversation=conv,
                          addressed=True, mentions=(UserRef("console", "console:demo", "sophie", "Sophie"),))
    effects = [e for e in bot.handle(msg) if isinstance(e, Outbound)]
    assert [e.reply.key for e in effects] == ["help.no_such_command"]
    text = effects[0].reply.text
    assert not [kind for kind, _ in split_markers(text) if kind in ("user", "ping", "channel", "link")], text
    assert "Sophie Martin" in text
