"""The news feed and follows: newest first, pages with a More button, links back, follows of
people and topics, subscriptions pinging once per thread."""
from __future__ import annotations

from datetime import timedelta

from bot.core import Bot
from bot.types import Outbound
from tests.test_social_index import command, keys, post


def test_feed_merges_people_and_topics_newest_first_with_pages(bot: Bot, clock) -> None:
    assert keys(command(bot, "reader", "feed")) == ["feed.no_follows"]
    post(bot, "alice", "general", "hello", when=clock.now() - timedelta(days=1))
    assert keys(command(bot, "reader", "follow @alice #pricing")) == ["social.followed"]
    assert keys(command(bot, "reader", "follow @alice")) == ["social.followed_already"]
    for i in range(7):
        clock.advance(timedelta(minutes=1))
        post(bot, "alice", "general", f"alice post {i}")
        clock.advance(timedelta(minutes=1))
        post(bot, "bob", "sales", f"bob post {i} #Pricing")
    post(bot, "bob", "sales", "bob off-topic")
    post(bot, "reader", "general", "my own #pricing post")
    first = command(bot, "reader", "feed")
    assert keys(first) == ["feed.page"]
    card = first[0].reply.card
    assert card is not None
    bodies = [body for _, body in card.sections]
    assert bodies[0].startswith("bob post 6") and bodies[1].startswith("alice post 6")
    assert "console://sales/" in bodies[0]
    assert [a.command for a in card.actions] == ["feed 2"]
    pages = [command(bot, "reader", f"feed {n}")[0].reply for n in (2, 3)]
    texts = [b for page in pages for _, b in page.card.sections]  # type: ignore[union-attr]
    assert len(texts) == 10 and texts[-2].startswith("alice post 0") and texts[-1].startswith("hello")
    assert pages[1].card is not None and pages[1].card.actions == ()
    everything = " ".join(bodies + texts)
    assert "off-topic" not in everything and "my own" not in everything
    assert keys(command(bot, "reader", "feed 4")) == ["feed.no_more"]
    assert keys(command(bot, "reader", "feed two")) == ["feed.bad_page"]


def test_follow_errors_and_following_list(bot: Bot) -> None:
    post(bot, "alice", "general", "hi")
    assert keys(command(bot, "reader", "follow @nobody")) == ["error.unknown_person"]
    assert keys(command(bot, "reader", "follow #1")) == ["social.bad_topic"]
    assert keys(command(bot, "alice", "follow @alice")) == ["social.follow_self"]
    assert keys(command(bot, "reader", "follow")) == ["error.missing_argument"]
    assert keys(command(bot, "reader", "unfollow @alice")) == ["social.not_following"]
    assert keys(command(bot, "reader", "following")) == ["social.following_none"]
    command(bot, "reader", "subscribe @alice")
    command(bot, "reader", "follow #Kubernetes")
    listed = command(bot, "reader", "following")[0].reply
    assert listed.params == {"count": 2}
    fields = dict(listed.card.fields)  # type: ignore[union-attr]
    assert fields["People"] == "Alice 🔔" and fields["Topics"] == "#Kubernetes"
    assert keys(command(bot, "reader", "unsubscribe @alice")) == ["social.unsubscribed"]
    assert keys(command(bot, "reader", "unsubscribe @alice")) == ["social.not_subscribed"]
    assert keys(command(bot, "alice", "followers")) == ["social.followers"]
    other = command(bot, "bob", "followers @alice")[0].reply
    assert other.key == "social.followers_count" and other.params["count"] == 1 and "Reader" not in other.text


def test_subscribers_get_one_grouped_ping_per_thread(bot: Bot, clock) -> None:
    post(bot, "alice", "general", "hello")
    command(bot, "reader", "subscribe #pricing")
    assert keys(command(bot, "fan", "subscribe @alice")) == ["social.subscribed"]
    root, effects = post(bot, "alice", "general", "New #pricing grid")
    assert effects == []  # pings wait for the grouping window
    post(bot, "bob", "general", "Looks good #pricing", thread=root)
    post(bot, "alice", "general", "Thanks", thread=root)
    post(bot, "bob", "general", "Other thread #pricing")
    clock.advance(timedelta(minutes=6))
    sent = {e.to.id: e.reply for e in bot.run_all_jobs() if isinstance(e, Outbound)}
    assert sent["reader"].key == "notifications.grouped" and sent["reader"].params == {"count": 2}
    assert "New #pricing grid" in sent["reader"].text and "Other thread" in sent["reader"].text
    assert sent["fan"].key == "social.ping_post" and "console://general/" in sent["fan"].text
    clock.advance(timedelta(minutes=6))
    assert [e for e in bot.run_all_jobs() if isinstance(e, Outbound)] == []


def test_topic_card_shows_contributors_followers_related_and_animators(bot: Bot) -> None:
    post(bot, "julien", "sales", "hello")
    command(bot, "camille", "role add @julien animator #sales", where="sales", kind="public")
    post(bot, "alice", "sales", "#pricing and #negociation")
    post(bot, "alice", "sales", "#pricing again with #negociation")
    post(bot, "bob", "general", "Thanks @alice for the #pricing grid #excel")
    command(bot, "reader", "follow #pricing")
    reply = command(bot, "reader", "topic #Pricing")[0].reply
    assert reply.key == "topic.card" and reply.params["followers"] == 1
    fields = dict(reply.card.fields)  # type: ignore[union-attr]
    assert fields["Top contributors"].startswith("Alice (5)")
    assert fields["Related topics"] == "#negociation (2), #excel (1)"
    assert fields["Animators there"] == "Julien (#sales)"
    assert fields["Where it lives"] == "#sales (2), #general (1)"
    assert "Thanks @Alice" in reply.card.sections[0][1]  # type: ignore[union-attr]
    assert keys(command(bot, "reader", "topic #nothing")) == ["topic.unknown"]
    assert keys(command(bot, "reader", "topic")) == ["error.missing_argument"]
