"""Read receipts become readers (handlers/readers.py, store/readers.py)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.clock import FixedClock
from bot.core import Bot
from bot.types import ConversationRef, MessageRead, UserRef
from store import readers
from store.models.core import Conversation, Person
from store.models.readers import MessageRead as ReadRow

ROOM = ConversationRef("matrix", "example.org", "!room:example.org", "public", name="general")


def person(handle: str) -> UserRef:
    return UserRef("matrix", "example.org", f"@{handle}:example.org", handle.title())


def test_a_receipt_is_recorded_once_and_counted(bot: Bot, clock: FixedClock) -> None:
    now = clock.now()
    for who in ("sophie", "julien", "sophie"):
        assert bot.handle(MessageRead("$m1", ROOM, person(who), now)) == []
    bot.handle(MessageRead("$m2", ROOM, person("lea"), now + timedelta(hours=1)))
    with bot.services.db.session("example.org") as s:
        conv = s.scalar(select(Conversation).where(Conversation.external_id == ROOM.id))
        assert conv is not None
        assert readers.readers_of(s, conv.id, "$m1") == 2
        assert readers.readers_since(s, conv.id, now) == 3
        assert readers.readers_since(s, conv.id, now + timedelta(minutes=30)) == 1
        assert len(s.scalars(select(ReadRow)).all()) == 3


def test_a_bot_reading_is_not_a_reader(bot: Bot, clock: FixedClock) -> None:
    other_bot = UserRef("matrix", "example.org", "@helper:example.org", "Helper", is_bot=True)
    bot.handle(MessageRead("$m1", ROOM, other_bot, clock.now()))
    with bot.services.db.session("example.org") as s:
        assert s.scalars(select(ReadRow)).all() == []
        assert s.scalar(select(Person).where(Person.external_id == other_bot.id)) is not None


def test_a_forgotten_person_s_reads_go_with_them(bot: Bot, clock: FixedClock) -> None:
    from store.social_privacy import forget_person

    bot.handle(MessageRead("$m1", ROOM, person("sophie"), clock.now()))
    bot.handle(MessageRead("$m1", ROOM, person("julien"), clock.now()))
    with bot.services.db.session("example.org") as s:
        sophie = s.scalar(select(Person).where(Person.external_id == "@sophie:example.org"))
        assert sophie is not None
        forget_person(s, sophie)
    with bot.services.db.session("example.org") as s:
        left = s.scalars(select(ReadRow)).all()
        assert len(left) == 1 and left[0].person_id != sophie.id
