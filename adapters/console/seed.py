"""Seed the demo organisation (once per database) through the store and the bot itself,
so the demo's past messages are indexed exactly as live ones would be."""
from __future__ import annotations

import re
from datetime import datetime, timezone, timedelta
from typing import Callable

from sqlalchemy import select, update

from bot.core import Bot
from bot.text import mention_marker
from bot.types import ConversationRef, FetchHistory, IncomingMessage, UserRef
from store import people as people_store
from store.demo import CHANNELS, DEMO_TENANT, PAST_MESSAGES, SITES, channel_members, demo_people, past_message_times
from store.expertise import add_skills
from store.models.core import Conversation, ConversationMember, Person, Role, Workspace

PLATFORM = "console"


def seed_demo(bot: Bot, tenant: str = DEMO_TENANT, platform: str = PLATFORM,
              user_id: Callable[[str], str] = lambda handle: handle,
              channel_id: Callable[[str], str] = lambda name: name) -> bool:
    """Create the demo organisation in `tenant` if it is not there yet (True when it seeded).

    Test harnesses of other adapters seed the same people under their own platform ids.
    """
    services = bot.services
    now = services.clock.now()
    people = demo_people()
    with services.db.session(tenant) as s:
        if s.scalar(select(Person.id).limit(1)) is not None:
            return False
        people_store.ensure_workspace(s, tenant, platform, services.settings.default_locale)
        s.get(Workspace, tenant).name = "Causette demo"  # type: ignore[union-attr]
        rows: dict[str, Person] = {}
        for i, p in enumerate(people):
            person = Person(external_id=user_id(p.handle), handle=p.handle, display_name=p.name, email=f"{p.handle}@demo.causette.org",
                            title=p.title, department=p.department, site=p.site, tz=p.tz, languages=p.languages,
                            locale="fr" if p.languages.startswith("fr") else "en", created_at=now, updated_at=now)
            s.add(person)
            s.flush()
            rows[p.handle] = person
            # A spread of confirmation dates: some skills are stale (older than 180 days).
            add_skills(s, tenant, person, p.skills, now - timedelta(days=(i * 17) % 400))
        s.add(Person(external_id=user_id("causette"), handle="causette", display_name="Causette", is_bot=True, created_at=now, updated_at=now))
        members = channel_members(people)
        for name, kind, lang in CHANNELS:
            site_tz = SITES["Paris"]
            conv = Conversation(external_id=channel_id(name), name=name, kind=kind, language=lang, tz=site_tz, created_at=now - timedelta(days=400))
            s.add(conv)
            s.flush()
            for handle in members.get(name, []):
                people_store.ensure_member(s, conv, rows[handle])
            # Founding members joined with the channel, not "now" (digests list newcomers by joined_at).
            s.execute(update(ConversationMember).where(ConversationMember.conversation_id == conv.id).values(joined_at=conv.created_at))
            conv.member_count = len(set(members.get(name, [])))
        sales = s.scalar(select(Conversation).where(Conversation.external_id == channel_id("sales")))
        s.add(Role(person_id=rows["julien"].id, role="animator", conversation_id=sales.id if sales else None, created_at=now))
        s.add(Role(person_id=rows["sophie"].id, role="referent", conversation_id=sales.id if sales else None, created_at=now))
    for msg in demo_history(None, tenant, platform, user_id, channel_id):
        bot.handle(msg)
    return True


def demo_history(request: FetchHistory | None, tenant: str = DEMO_TENANT, platform: str = PLATFORM,
                 user_id: Callable[[str], str] = lambda handle: handle,
                 channel_id: Callable[[str], str] = lambda name: name) -> list[IncomingMessage]:
    """The demo's past messages, as backfill events (all of them, or one channel's)."""
    base = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    kinds = {name: kind for name, kind, _ in CHANNELS}
    out = []
    for (channel, author, text), when in zip(PAST_MESSAGES, past_message_times(base)):
        if request is not None and request.conversation.id != channel_id(channel):
            continue
        conv = ConversationRef(platform, tenant, channel_id(channel), kinds[channel], name=channel)  # type: ignore[arg-type]
        mid = f"demo-{channel}-{int(when.timestamp())}"
        mentioned = re.findall(r"(?<![\w@])@([a-z]+)", text)
        out.append(IncomingMessage(
            id=mid, text=re.sub(r"(?<![\w@])@([a-z]+)", lambda m: mention_marker(user_id(m.group(1))), text),
            sender=UserRef(platform, tenant, user_id(author), author), conversation=conv, addressed=False,
            mentions=tuple(UserRef(platform, tenant, user_id(h), h) for h in mentioned), sent_at=when,
            permalink=f"{platform}://{channel}/{mid}", backfill=True))
    return out
