"""Ambient indexing: once per message, edits, deletions, threads, reactions, evidence,
opt-outs and switched-off channels, backfill without pings, the bot joining a channel."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.core import Bot
from bot.text import mention_marker
from bot.types import (
    ConversationRef,
    Effect,
    FetchHistory,
    IncomingMessage,
    MembersChanged,
    MessageDeleted,
    MessageEdited,
    Outbound,
    ReactionAdded,
    UserRef,
)
from store.models.core import Conversation, Evidence, Person, Workspace
from store.models.social import Message, MessageMention, MessageTopic, Topic

TENANT = "T1"
_ids = itertools.count(1)


def user(handle: str) -> UserRef:
    return UserRef("console", TENANT, handle, handle.title())


def conv(name: str, kind: str = "public") -> ConversationRef:
    return ConversationRef("console", TENANT, name if kind != "dm" else f"dm-{name}", kind, name=name)  # type: ignore[arg-type]


def post(bot: Bot, who: str, where: str, text: str, *, kind: str = "public", mid: str | None = None,
         thread: str | None = None, backfill: bool = False, addressed: bool = False, via: str = "message",
         when: datetime | None = None) -> tuple[str, list[Effect]]:
    """A channel message as adapters deliver it (mentions as markers + `mentions`)."""
    mid = mid or f"m{next(_ids)}"
    mentions = []
    for word in text.split():
        if word.startswith("@") and len(word) > 1:
            handle = word[1:].rstrip(",.!?")
            mentions.append(user(handle))
            text = text.replace("@" + handle, mention_marker(handle), 1)
    msg = IncomingMessage(id=mid, text=text, sender=user(who), conversation=conv(where, kind), addressed=addressed,
                          mentions=tuple(mentions), sent_at=when or bot.services.clock.now(), thread_id=thread,
                          permalink=f"console://{where}/{mid}", backfill=backfill, via=via)  # type: ignore[arg-type]
    return mid, bot.handle(msg)


def command(bot: Bot, who: str, text: str, where: str = "dm", kind: str = "dm") -> list[Outbound]:
    c = conv(who, "dm") if where == "dm" else conv(where, kind)
    msg = IncomingMessage(id=f"c{next(_ids)}", text=text, sender=user(who), conversation=c, addressed=True,
                          sent_at=bot.services.clock.now(), via="command")
    return [e for e in bot.handle(msg) if isinstance(e, Outbound)]


def keys(effects: list[Outbound]) -> list[str]:
    return [e.reply.key for e in effects]


def join(bot: Bot, where: str, *handles: str, kind: str = "private") -> None:
    bot.handle(MembersChanged(conv(where, kind), joined=tuple(user(h) for h in handles)))


def count(bot: Bot, model: type, *where: object) -> int:
    with bot.services.db.session(TENANT) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def evidence(bot: Bot) -> list[tuple[str, str, str]]:
    with bot.services.db.session(TENANT) as s:
        rows = s.execute(select(Person.handle, Evidence.kind, Evidence.topic_key).join(Person, Person.id == Evidence.person_id)
                         .order_by(Person.handle, Evidence.kind, Evidence.topic_key))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_message_is_indexed_once_with_topics_mentions_and_evidence(bot: Bot) -> None:
    mid, effects = post(bot, "alice", "general", "Merci @bob pour la #Négociation et le #pricing !")
    assert effects == []
    post(bot, "alice", "general", "Merci @bob pour la #Négociation et le #pricing !", mid=mid)  # double delivery
    assert count(bot, Message) == 1
    assert count(bot, MessageTopic) == 2 and count(bot, MessageMention) == 1
    with bot.services.db.session(TENANT) as s:
        assert sorted(s.scalars(select(Topic.key))) == ["negociation", "pricing"]
        assert s.scalar(select(Topic.label).where(Topic.key == "negociation")) == "Négociation"
        assert s.get(Workspace, TENANT).expertise_version > 0  # type: ignore[union-attr]
    assert evidence(bot) == [
        ("Alice", "hashtag", "negociation"), ("Alice", "hashtag", "pricing"),
        ("Bob", "mentioned", "negociation"), ("Bob", "mentioned", "pricing"),
        ("Bob", "thanked", "negociation"), ("Bob", "thanked", "pricing"),
    ]
    with bot.services.db.session(TENANT) as s:
        row = s.scalar(select(Evidence).where(Evidence.kind == "hashtag").limit(1))
        assert row is not None and row.source_ref.startswith("msg:") and row.conversation_id is not None


def test_mentions_without_thanks_are_not_thanks(bot: Bot) -> None:
    post(bot, "alice", "general", "@bob can you look at #kubernetes?")
    assert ("Bob", "thanked", "kubernetes") not in evidence(bot)
    assert ("Bob", "mentioned", "kubernetes") in evidence(bot)


def test_edit_reindexes_and_delete_removes_for_good(bot: Bot) -> None:
    mid, _ = post(bot, "alice", "general", "About #pricing")
    bot.handle(MessageEdited(mid, "About #terraform with @bob", user("alice"), conv("general"),
                             mentions=(user("bob"),)))
    with bot.services.db.session(TENANT) as s:
        msg = s.scalar(select(Message))
        assert msg is not None and "terraform" in msg.text and msg.edited_at is not None
        topics = list(s.scalars(select(Topic.key).join(MessageTopic, MessageTopic.topic_id == Topic.id)))
    assert topics == ["terraform"]
    assert {e[2] for e in evidence(bot)} == {"terraform"}
    bot.handle(MessageDeleted(mid, conv("general")))
    assert count(bot, MessageTopic) == 0 and count(bot, MessageMention) == 0 and evidence(bot) == []
    with bot.services.db.session(TENANT) as s:
        msg = s.scalar(select(Message))
        assert msg is not None and msg.deleted and msg.text == ""
    post(bot, "alice", "general", "About #pricing", mid=mid)  # a late redelivery
    assert evidence(bot) == [] and count(bot, Message) == 1


def test_a_deletion_seen_first_blocks_the_late_original(bot: Bot) -> None:
    bot.handle(MessageDeleted("ghost", conv("general")))
    post(bot, "alice", "general", "#pricing secret", mid="ghost")
    assert evidence(bot) == []


def test_thread_replies_and_reactions_count_once(bot: Bot) -> None:
    root, _ = post(bot, "alice", "general", "Question on #python")
    reply, _ = post(bot, "bob", "general", "Answer", thread=root)
    post(bot, "bob", "general", "Answer", thread=root, mid=reply)
    post(bot, "carol", "general", "Me too", thread=root)
    for _ in range(2):
        bot.handle(ReactionAdded(root, conv("general"), user("bob"), "thumbsup"))
    bot.handle(ReactionAdded(root, conv("general"), user("carol"), "thumbsup"))
    bot.handle(ReactionAdded(root, conv("general"), user("carol"), "thumbsup", removed=True))
    bot.handle(ReactionAdded(root, conv("general"), user("carol"), "thumbsup", removed=True))
    with bot.services.db.session(TENANT) as s:
        msg = s.scalar(select(Message).where(Message.external_id == root))
        assert msg is not None and (msg.reply_count, msg.reaction_count) == (2, 1)


def test_what_is_not_indexed(bot: Bot) -> None:
    post(bot, "alice", "dm", "secret #pricing", kind="dm")
    command(bot, "alice", "feed #pricing", where="general", kind="public")  # a command, not a post
    bot_user = UserRef("console", TENANT, "somebot", "Bot", is_bot=True)
    bot.handle(IncomingMessage(id="b1", text="#pricing", sender=bot_user, conversation=conv("general"), addressed=False))
    assert count(bot, Message) == 0
    _, effects = post(bot, "alice", "general", "hey #pricing", addressed=True, via="mention")
    assert count(bot, Message) == 1  # a post that mentions the bot is still a post


def test_person_opt_out_and_channel_switch(bot: Bot) -> None:
    post(bot, "alice", "general", "old #pricing")
    assert keys(command(bot, "alice", "privacy me off")) == ["privacy.me_off"]
    assert count(bot, Message) == 0 and evidence(bot) == []
    post(bot, "alice", "general", "new #pricing")
    assert count(bot, Message) == 0
    assert keys(command(bot, "alice", "privacy me on")) == ["privacy.me_on"]
    post(bot, "alice", "general", "back #pricing")
    assert count(bot, Message) == 1
    post(bot, "bob", "sales", "deal #pricing")
    assert keys(command(bot, "bob", "privacy channel off", where="sales", kind="public")) == ["error.not_allowed"]
    assert keys(command(bot, "camille", "privacy channel off #sales", where="general", kind="public")) == ["privacy.channel_set_off"]
    post(bot, "bob", "sales", "another #pricing")
    with bot.services.db.session(TENANT) as s:
        assert [m.text for m in s.scalars(select(Message))] == ["back #pricing"]
    assert keys(command(bot, "camille", "privacy channel on #sales")) == ["privacy.channel_set_on"]


def test_backfill_is_idempotent_and_never_pings(bot: Bot, clock) -> None:
    command(bot, "bob", "subscribe @alice")
    old = clock.now() - timedelta(days=3)
    post(bot, "alice", "general", "history #pricing", mid="h1", backfill=True, when=old)
    post(bot, "alice", "general", "history #pricing", mid="h1", backfill=True, when=old)
    assert count(bot, Message) == 1
    clock.advance(timedelta(minutes=10))
    assert [e for e in bot.run_all_jobs() if isinstance(e, Outbound)] == []


def test_the_bot_joining_a_channel_starts_a_backfill(bot: Bot) -> None:
    effects = bot.handle(MembersChanged(conv("marketing"), bot_joined=True))
    fetch = [e for e in effects if isinstance(e, FetchHistory)]
    notes = [e for e in effects if isinstance(e, Outbound)]
    assert len(fetch) == 1 and fetch[0].conversation.id == "marketing"
    assert fetch[0].since == bot.services.clock.now() - timedelta(days=90)
    assert [n.reply.key for n in notes] == ["social.backfill_joined"] and notes[0].anchor == fetch[0].progress_anchor
    bot.handle(MembersChanged(conv("marketing"), bot_left=True))
    post(bot, "alice", "marketing", "#seo")
    assert count(bot, Message) == 0


def test_index_history_is_for_animators_and_admins(bot: Bot) -> None:
    post(bot, "bob", "sales", "hello")
    assert keys(command(bot, "bob", "index history #sales 30d")) == ["error.not_allowed"]
    effects = bot.handle(IncomingMessage(id="x1", text="index history #sales 30d", sender=user("camille"),
                                         conversation=conv("camille", "dm"), addressed=True, via="command"))
    fetch = [e for e in effects if isinstance(e, FetchHistory)]
    assert len(fetch) == 1 and fetch[0].since == bot.services.clock.now() - timedelta(days=30)
    assert keys(command(bot, "camille", "index history #sales 900d")) == ["social.backfill_bad_days"]
    assert keys(command(bot, "camille", "index history")) == ["social.backfill_which_channel"]
    assert keys(command(bot, "camille", "index history #nowhere")) == ["error.unknown_channel"]


def test_membership_changes_drive_private_reads(bot: Bot) -> None:
    join(bot, "board", "alice", "bob")
    with bot.services.db.session(TENANT) as s:
        board = s.scalar(select(Conversation).where(Conversation.external_id == "board"))
        assert board is not None and board.kind == "private"
    bot.handle(MembersChanged(conv("board", "private"), left=(user("bob"),)))
    post(bot, "alice", "board", "#reorg plans")
    assert keys(command(bot, "bob", "topic #reorg")) == ["topic.unknown"]
    assert keys(command(bot, "alice", "topic #reorg")) == ["topic.card"]


def test_hashtag_cases_from_the_issue() -> None:
    from bot.text import extract_hashtags, topic_key

    assert extract_hashtags("#aéronautique, #Négociation et #appel-offres") == ("aéronautique", "Négociation", "appel-offres")
    assert extract_hashtags("#日本語 ok") == ("日本語",)
    assert extract_hashtags("see <#C123|general> and \u27e6#C123\u27e7") == ()
    assert extract_hashtags("join #room:server now") == ()
    assert extract_hashtags("ticket #1 and #42") == ()
    assert extract_hashtags("https://x.org/page#top and x.html#frag") == ()
    assert extract_hashtags("&#39; #pricing #Pricing #PRICING.") == ("pricing",)
    assert topic_key("#Négociation") == topic_key("negociation") == "negociation"
