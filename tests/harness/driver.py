"""The one test driver that speaks to the core directly: a person types `text` in a channel
(or "dm") and the bot's effects come back. Core-level tests bind it to their tenant with
`functools.partial` rather than building `IncomingMessage`s of their own; scenario
harnesses speak through their messenger instead (tests/harness/{console,slack,teams}.py).
"""
from __future__ import annotations

import itertools
import re
from typing import Callable, Mapping

from bot.core import Bot
from bot.text import mention_marker
from bot.types import ConversationKind, ConversationRef, Effect, IncomingMessage, Outbound, UserRef
from store.demo import CHANNELS, DEMO_TENANT

_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+)")
KINDS: dict[str, str] = {name: kind for name, kind, _ in CHANNELS}
_ids = itertools.count(1)


def conversation(who: str, where: str, *, tenant: str = DEMO_TENANT, platform: str = "console",
                 kind: str | None = None) -> ConversationRef:
    """"dm" is `who`'s DM with the bot (`dm-<who>`); otherwise a channel by name, its kind
    given or the demo's (#direction is private), public by default."""
    if where == "dm":
        return ConversationRef(platform, tenant, f"dm-{who}", "dm", name=f"dm-{who}")
    name = where.lstrip("#")
    chosen: ConversationKind = (kind or KINDS.get(name, "public"))  # type: ignore[assignment]
    return ConversationRef(platform, tenant, name, chosen, name=name)


def message(bot: Bot, who: str, where: str, text: str, *, tenant: str = DEMO_TENANT, platform: str = "console",
            kind: str | None = None, display: Callable[[str], str] | None = None, mark_mentions: bool = True, addressed: bool = True,
            via: str = "command", msg_id: str | None = None, thread_id: str | None = None,
            form_values: Mapping[str, str] | None = None, source_text: str = "", source_permalink: str = "",
            source_id: str | None = None) -> IncomingMessage:
    """The message as an adapter would hand it over: `@handle` becomes a mention (unless
    `mark_mentions=False`, for tests of the raw text), a permalink and a fresh id; the
    sender's display name is `display(who)` when given (as a platform's user profile)."""
    mentions: list[UserRef] = []

    def marker(m: re.Match[str]) -> str:
        mentions.append(UserRef(platform, tenant, m.group(1)))
        return mention_marker(m.group(1))

    if mark_mentions:
        text = _MENTION.sub(marker, text)
    mid = msg_id or f"m{next(_ids)}"
    conv = conversation(who, where, tenant=tenant, platform=platform, kind=kind)
    sender = UserRef(platform, tenant, who, display(who) if display is not None else "")
    return IncomingMessage(
        id=mid, text=text, sender=sender, conversation=conv, addressed=addressed, mentions=tuple(mentions),
        sent_at=bot.services.clock.now(), permalink=f"{platform}://{conv.id}/{mid}", via=via,  # type: ignore[arg-type]
        form_values=form_values, thread_id=thread_id, source_text=source_text, source_permalink=source_permalink,
        source_id=source_id)


def handle(bot: Bot, who: str, where: str, text: str, **kw: object) -> list[Effect]:
    """Every effect of `who` typing `text` in `where` (see `message` for the options)."""
    return bot.handle(message(bot, who, where, text, **kw))  # type: ignore[arg-type]


def say(bot: Bot, who: str, where: str, text: str, **kw: object) -> list[Outbound]:
    """The replies (and other messages) of `who` typing `text` in `where`."""
    return [e for e in handle(bot, who, where, text, **kw) if isinstance(e, Outbound)]
