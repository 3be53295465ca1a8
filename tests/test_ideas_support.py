"""A small driver for the contribution unit tests: the demo organisation, neutral events in,
raw effects out (so tests can look at anchors, targets and threads, not only prompt keys).
No tests here; `tests/test_ideas.py`, `test_help_requests.py`, `test_kudos.py` and
`test_fresh_skills.py` import it."""
from __future__ import annotations

import itertools
import re
from contextlib import contextmanager
from typing import Iterator, Mapping

from sqlalchemy.orm import Session

from adapters.console.seed import seed_demo
from bot.core import Bot
from bot.text import mention_marker
from bot.types import ConversationRef, Effect, IncomingMessage, Outbound, UserRef
from store.demo import CHANNELS, DEMO_TENANT

PLATFORM = "console"
_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+)")
KINDS = {name: kind for name, kind, _ in CHANNELS}


class Driver:
    def __init__(self, bot: Bot) -> None:
        seed_demo(bot)
        self.bot = bot
        self._ids = itertools.count(1)

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.bot.services.clock

    def conversation(self, who: str, where: str) -> ConversationRef:
        if where == "dm":
            return ConversationRef(PLATFORM, DEMO_TENANT, f"dm-{who}", "dm", name=f"dm-{who}")
        name = where.lstrip("#")
        return ConversationRef(PLATFORM, DEMO_TENANT, name, KINDS.get(name, "public"), name=name)  # type: ignore[arg-type]

    def message(self, who: str, where: str, text: str, *, addressed: bool = True, via: str = "command",
                form_values: Mapping[str, str] | None = None, thread_id: str | None = None, source_text: str = "",
                source_permalink: str = "", source_id: str | None = None, msg_id: str | None = None) -> IncomingMessage:
        mentions: list[UserRef] = []

        def marker(m: re.Match[str]) -> str:
            mentions.append(UserRef(PLATFORM, DEMO_TENANT, m.group(1)))
            return mention_marker(m.group(1))

        text = _MENTION.sub(marker, text)
        mid = msg_id or f"m{next(self._ids)}"
        conv = self.conversation(who, where)
        return IncomingMessage(
            id=mid, text=text, sender=UserRef(PLATFORM, DEMO_TENANT, who), conversation=conv, addressed=addressed,
            mentions=tuple(mentions), sent_at=self.clock.now(), permalink=f"console://{conv.id}/{mid}", via=via,  # type: ignore[arg-type]
            form_values=form_values, thread_id=thread_id, source_text=source_text, source_permalink=source_permalink,
            source_id=source_id,
        )

    def say(self, who: str, where: str, text: str, **kw: object) -> list[Effect]:
        return self.bot.handle(self.message(who, where, text, **kw))  # type: ignore[arg-type]

    def job(self, name: str) -> list[Effect]:
        job = next(j for j in self.bot.registry.jobs if j.name == name)
        return self.bot.run_job(job)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.bot.services.db.session(DEMO_TENANT) as s:
            yield s


def keys(effects: list[Effect]) -> list[str]:
    return [e.reply.key for e in effects if isinstance(e, Outbound)]


def outbound(effects: list[Effect], key: str) -> Outbound:
    found = [e for e in effects if isinstance(e, Outbound) and e.reply.key == key]
    assert found, f"no {key} in {keys(effects)}"
    return found[0]


def everything(effects: list[Effect]) -> str:
    """All text a person could see in these effects: texts, cards, forms."""
    parts: list[str] = []
    for e in effects:
        if not isinstance(e, Outbound):
            continue
        r = e.reply
        parts.append(r.text)
        if r.card is not None:
            c = r.card
            parts += [c.title, c.body, c.footer, *(f"{k} {v}" for k, v in c.fields), *(f"{h} {b}" for h, b in c.sections),
                      *(f"{a.label} {a.command}" for a in c.actions)]
        if r.form is not None:
            parts += [f"{f.label} {f.value}" for f in r.form.fields]
    return "\n".join(parts)
