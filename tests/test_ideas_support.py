"""A small driver for the contribution unit tests: the demo organisation, neutral events in,
raw effects out (so tests can look at anchors, targets and threads, not only prompt keys),
through the shared driver (tests/harness/driver.py).
No tests here; `tests/test_ideas.py`, `test_help_requests.py`, `test_kudos.py` and
`test_fresh_skills.py` import it."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.orm import Session

from datetime import timedelta

from bot.core import Bot
from bot.text import norm_key
from bot.types import ConversationRef, Effect, IncomingMessage, Outbound
from store.demo import CHANNELS, DEMO_TENANT, SITES, channel_members, demo_people
from store.expertise import bump_version
from store.models.core import Conversation, ConversationMember, Person, PersonSkill, Role, Skill
from store.people import ensure_workspace
from tests.harness import driver

PLATFORM = "console"


def seed_light(bot: Bot) -> None:
    """The demo organisation (same people, skills, channels and roles as `seed_demo`) written
    in a few bulk inserts and without the past messages: several times faster per test."""
    now = bot.services.clock.now()
    people = demo_people()
    with bot.services.db.session(DEMO_TENANT) as s:
        ensure_workspace(s, DEMO_TENANT, PLATFORM, bot.services.settings.default_locale)
        rows = [Person(external_id=p.handle, handle=p.handle, display_name=p.name, email=f"{p.handle}@demo.causette.org",
                       title=p.title, department=p.department, site=p.site, tz=p.tz, languages=p.languages,
                       locale="fr" if p.languages.startswith("fr") else "en", created_at=now, updated_at=now) for p in people]
        rows.append(Person(external_id="causette", handle="causette", display_name="Causette", is_bot=True,
                           created_at=now, updated_at=now))
        skills = {norm_key(name): Skill(name=name, key=norm_key(name)) for p in people for name in p.skills}
        convs = {name: Conversation(external_id=name, name=name, kind=kind, language=lang, tz=SITES["Paris"],
                                    created_at=now - timedelta(days=400)) for name, kind, lang in CHANNELS}
        s.add_all([*rows, *skills.values(), *convs.values()])
        s.flush()
        by_handle = {r.handle: r for r in rows}
        links = [PersonSkill(person_id=by_handle[p.handle].id, skill_id=skills[norm_key(name)].id, source="declared",
                             created_at=now, confirmed_at=now - timedelta(days=(i * 17) % 400))
                 for i, p in enumerate(people) for name in dict.fromkeys(p.skills)]
        members = [ConversationMember(conversation_id=convs[name].id, person_id=by_handle[h].id, joined_at=now)
                   for name, handles in channel_members(people).items() for h in dict.fromkeys(handles)]
        roles = [Role(person_id=by_handle["julien"].id, role="animator", conversation_id=convs["sales"].id, created_at=now),
                 Role(person_id=by_handle["sophie"].id, role="referent", conversation_id=convs["sales"].id, created_at=now)]
        s.add_all([*links, *members, *roles])
        s.flush()
        bump_version(s, DEMO_TENANT)


class Driver:
    def __init__(self, bot: Bot) -> None:
        seed_light(bot)
        self.bot = bot

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.bot.services.clock

    def conversation(self, who: str, where: str) -> ConversationRef:
        return driver.conversation(who, where, tenant=DEMO_TENANT, platform=PLATFORM)

    def message(self, who: str, where: str, text: str, **kw: object) -> IncomingMessage:
        return driver.message(self.bot, who, where, text, tenant=DEMO_TENANT, platform=PLATFORM, **kw)  # type: ignore[arg-type]

    def say(self, who: str, where: str, text: str, **kw: object) -> list[Effect]:
        return driver.handle(self.bot, who, where, text, tenant=DEMO_TENANT, platform=PLATFORM, **kw)

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
