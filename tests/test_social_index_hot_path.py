"""The ambient message's short path (on PostgreSQL: the event's rows and the membership in one
statement, the message with its topics, mentions and evidence in another): what it writes
is what the long path writes. Runs on both databases."""
from __future__ import annotations

from sqlalchemy import func, select

from adapters.shell import DeliveryShell
from bot.core import Bot
from store import people as people_store
from store.models.core import Conversation, ConversationMember, Evidence, Person, Workspace
from store.models.social import Message, MessageTopic, Topic
from tests.test_social_index import TENANT, conv, post


def version(bot: Bot) -> int:
    with bot.services.db.session(TENANT) as s:
        return int(s.scalar(select(Workspace.expertise_version).where(Workspace.id == TENANT)) or 0)


def test_a_topic_used_for_the_first_time_is_created_linked_and_renews_the_index_once(bot: Bot) -> None:
    post(bot, "alice", "general", "warming up with #rollout")
    before = version(bot)
    mid, _ = post(bot, "alice", "general", "first words on #Kubernetes and #rollout, thanks @bob")
    assert version(bot) == before + 1, "a topic with no evidence yet renews every process's index"
    post(bot, "carol", "general", "more #kubernetes")
    assert version(bot) == before + 1, "a topic with evidence already does not"
    post(bot, "alice", "general", "first words on #Kubernetes and #rollout, thanks @bob", mid=mid)  # redelivered
    with bot.services.db.session(TENANT) as s:
        message = s.scalar(select(Message).where(Message.external_id == mid))
        assert message is not None
        linked = set(s.scalars(select(Topic.key).join(MessageTopic, MessageTopic.topic_id == Topic.id)
                               .where(MessageTopic.message_id == message.id)))
        assert linked == {"kubernetes", "rollout"}
        assert s.scalar(select(Topic.label).where(Topic.key == "kubernetes")) == "Kubernetes"
        evidence = set(s.execute(select(Person.external_id, Evidence.kind, Evidence.topic_key, Evidence.topic_label)
                                 .join(Person, Person.id == Evidence.person_id)
                                 .where(Evidence.source_ref == f"msg:{message.conversation_id}:{mid}")).all())
        assert evidence == {(who, kind, key, label) for key, label in (("kubernetes", "Kubernetes"), ("rollout", "rollout"))
                            for who, kind in (("alice", "hashtag"), ("bob", "mentioned"), ("bob", "thanked"))}
        assert s.scalar(select(func.count(Message.id)).where(Message.external_id == mid)) == 1


def test_speaking_in_a_channel_makes_a_member_but_not_in_a_dm(bot: Bot) -> None:
    post(bot, "carol", "secret", "hello #plans", kind="private")
    post(bot, "carol", "carol", "a note to myself", kind="dm")
    with bot.services.db.session(TENANT) as s:
        kinds = sorted(s.scalars(select(Conversation.kind).join(ConversationMember,
                                                                ConversationMember.conversation_id == Conversation.id)))
        assert kinds == ["private"]
        s.execute(ConversationMember.__table__.delete())
    with bot.services.db.session(TENANT) as s:  # without the event's time, reading the rows writes nothing
        rows = people_store.event_rows(s, TENANT, "carol", conv("secret", "private").id)
        assert rows.person is not None and rows.conversation is not None and not rows.member
    with bot.services.db.session(TENANT) as s:
        assert s.scalar(select(func.count(ConversationMember.id))) == 0
    post(bot, "carol", "secret", "back again", kind="private")
    with bot.services.db.session(TENANT) as s:
        assert s.scalar(select(func.count(ConversationMember.id))) == 1


def test_the_shell_knows_a_person_stored_after_it_first_looked(bot: Bot) -> None:
    post(bot, "alice", "general", "hello")
    shell = DeliveryShell(bot.services)
    assert shell.known_person(TENANT, "alice")
    assert not shell.known_person(TENANT, "dave")
    post(bot, "dave", "general", "hi, new here")
    assert shell.known_person(TENANT, "dave")
    assert not shell.known_person(TENANT, "erin")
