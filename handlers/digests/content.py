"""What goes into a digest, read from the store for one period. No rendering here.

Channel digests read public content only: the digest's channel, the extra public channels
named as sources, and public messages carrying the chosen hashtags. Personal digests read
only conversations the person may read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from handlers.digests.parse import SECTIONS
from handlers.digests.sources import ContributionSource, Entry, FollowSource
from bot.text import shorten, strip_markers
from store import digests as store
from store.models.core import Conversation, Person
from store.models.digests import Digest

ITEMS_PER_SECTION = 5
TEXT_CHARS = 160


@dataclass(frozen=True)
class Sources:
    """A digest's `sources` column: extra channel ids, hashtag keys, chosen sections."""

    channels: tuple[int, ...] = ()
    hashtags: tuple[str, ...] = ()
    sections: tuple[str, ...] = SECTIONS

    def dumps(self) -> str:
        return json.dumps({"channels": list(self.channels), "hashtags": list(self.hashtags), "sections": list(self.sections)})

    @classmethod
    def loads(cls, text: str) -> "Sources":
        data = json.loads(text or "{}")
        sections = tuple(s for s in data.get("sections") or SECTIONS if s in SECTIONS)
        return cls(tuple(int(c) for c in data.get("channels", [])), tuple(str(h) for h in data.get("hashtags", [])), sections)


@dataclass(frozen=True)
class Content:
    """Sections in display order, as (section name, entries); plus the participation figures."""

    sections: tuple[tuple[str, tuple[Entry, ...]], ...] = ()
    contributors: int = 0
    members: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(entries for _, entries in self.sections)


def _entry(row: store.MessageRow, detail: str = "", counts: bool = False) -> Entry:
    text = shorten(strip_markers(row.text), TEXT_CHARS)
    if counts:
        return Entry(text, row.author, detail, row.permalink, replies=row.replies, reactions=row.reactions)
    return Entry(text, row.author, detail, row.permalink)


def build_channel(session: Session, digest: Digest, conversation: Conversation, start: datetime, end: datetime,
                  contributions: ContributionSource) -> Content:
    sources = Sources.loads(digest.sources)
    if conversation.kind != "public" or not conversation.indexing:
        return Content()  # a channel digest only ever shows public content
    channel_ids = [conversation.id] + [c.id for c in store.public_channels(session, sources.channels) if c.id != conversation.id]
    limit = ITEMS_PER_SECTION
    sections: list[tuple[str, tuple[Entry, ...]]] = []
    for name in sources.sections:
        if name == "discussions":
            rows = store.top_discussions(session, channel_ids, sources.hashtags, start, end, limit)
            entries = tuple(_entry(r, counts=True) for r in rows)
        elif name == "ideas":
            entries = tuple(contributions.ideas(session, channel_ids, start, end, limit))
        elif name == "help":
            entries = tuple(contributions.open_help(session, channel_ids, start, end, limit))
        elif name == "kudos":
            entries = tuple(contributions.kudos(session, channel_ids, start, end, limit))
        else:
            entries = tuple(Entry(n.name, detail=", ".join(n.skills))
                            for n in store.newcomers(session, conversation, start, end, limit))
        sections.append((name, entries))
    contributors = store.participation(session, channel_ids, start, end)
    return Content(tuple(sections), contributors, store.member_count(session, conversation))


def build_personal(session: Session, person: Person, start: datetime, end: datetime, follows: FollowSource) -> Content:
    people_ids, topic_ids = follows.followed(session, person.id)
    limit = ITEMS_PER_SECTION
    followed = store.from_followed(session, person, people_ids, topic_ids, start, end, limit)
    mentions = store.mentions_of(session, person, start, end, limit)
    seen = {r.id for r in followed}
    return Content((
        ("followed", tuple(_entry(r, r.conversation) for r in followed)),
        ("mentions", tuple(_entry(r, r.conversation) for r in mentions if r.id not in seen)),
    ))
