"""One `follow` naming several people or topics writes its rows in one order (people by
platform id, then topics by key), whatever order they were typed in: two such commands at
once cannot each wait for the row the other inserted first (a deadlock on PostgreSQL).
The reply still lists them as typed."""
from __future__ import annotations

from sqlalchemy import select

from bot.core import Bot
from store.models.core import Person
from store.models.social import Follow, Topic
from tests.test_social_index import TENANT, command, keys, post


def written_order(bot: Bot) -> list[str]:
    with bot.services.db.session(TENANT) as s:
        rows = s.execute(select(Person.external_id, Topic.key).select_from(Follow)
                         .outerjoin(Person, Follow.person_id == Person.id).outerjoin(Topic, Follow.topic_id == Topic.id)
                         .order_by(Follow.id)).all()
    return [person or "#" + topic for person, topic in rows]


def test_follow_writes_in_platform_id_order_and_answers_in_typed_order(bot: Bot) -> None:
    for who in ("zoe", "alice", "mia"):
        post(bot, who, "general", "hello")
    replies = command(bot, "reader", "follow @zoe #sales @alice #billing @mia")
    assert keys(replies) == ["social.followed"]
    assert written_order(bot) == ["alice", "mia", "zoe", "#billing", "#sales"]
    text = replies[0].reply.text
    assert text.index("Zoe") < text.index("Alice") < text.index("Mia"), text
    assert text.index("#sales") < text.index("#billing"), text
