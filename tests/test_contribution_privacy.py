"""The privacy contract for ideas and kudos: on every read path that lists, shows or counts
them, someone who is not a member of the private channel they come from sees nothing (not
the title, not the count, not that the number exists), and a member does see them.

#direction is the demo's private channel: camille (admin), sophie, thomas and julien.
emma, lucas, hugo, lea and nathan are not members and never speak in it here (speaking in a
channel makes the bot record the speaker as a member).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from bot.core import Bot
from handlers.digests.contribution_source import StoreContributions
from bot.types import Outbound, UserRef
from store.contribution_export import export_person
from store.models.contribution import Idea, IdeaCampaign, IdeaFollow, IdeaVote
from store.models.core import Conversation, ConversationMember, Person
from tests.test_ideas_support import Driver, everything, keys, outbound

SECRET = "BLUEBIRD integration plan for Acme"
MEMBERS = ("camille", "sophie", "thomas", "julien")
OUTSIDERS = ("emma", "lucas", "nathan")


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def _private_idea(d: Driver) -> None:
    """Idea #1, typed by thomas in #direction: its card stays there."""
    posted = d.say("thomas", "#direction", f"idea {SECRET} — roll-out before the merger #bluebird")
    assert keys(posted) == ["idea.card"] and outbound(posted, "idea.card").to.id == "direction"


def _leave(d: Driver, who: str, channel: str) -> None:
    with d.session() as s:
        person = s.scalar(select(Person.id).where(Person.handle == who))
        conv = s.scalar(select(Conversation.id).where(Conversation.name == channel))
        s.execute(delete(ConversationMember).where(ConversationMember.person_id == person, ConversationMember.conversation_id == conv))


def _like_missing(d: Driver, who: str, command: str) -> None:
    """`command` about idea #1 answers exactly like the same command about a number that does not exist."""
    seen = d.say(who, "#general", command)
    missing = d.say(who, "#general", command.replace(" 1", " 77"))
    assert keys(seen) == keys(missing) and everything(seen) == everything(missing).replace("77", "1")
    assert "BLUEBIRD" not in everything(seen)


# Ideas: lists -------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["ideas", "ideas top", "ideas new", "idées nouvelles", "ideas #bluebird"])
def test_idea_lists_hide_a_private_idea_from_outsiders_only(d: Driver, command: str) -> None:
    _private_idea(d)
    for who in OUTSIDERS:
        answer = d.say(who, "#general", command)
        assert keys(answer) == ["idea.list_empty"] and "BLUEBIRD" not in everything(answer)
    for who in MEMBERS:
        answer = d.say(who, "#general", command)
        assert keys(answer) == ["idea.list"] and SECRET in everything(answer)


def test_status_list_hides_a_private_idea_from_outsiders(d: Driver) -> None:
    _private_idea(d)
    assert keys(d.say("camille", "#direction", "idea status 1 under review")) == ["idea.card", "idea.status_changed"]
    outsider = d.say("emma", "#general", "ideas under review")
    assert keys(outsider) == ["idea.list_empty"] and "BLUEBIRD" not in everything(outsider)
    assert SECRET in everything(d.say("julien", "#general", "ideas under review"))


def test_mine_lists_the_authors_idea_even_after_leaving_the_channel(d: Driver) -> None:
    _private_idea(d)
    _leave(d, "thomas", "direction")
    assert SECRET in everything(d.say("thomas", "#general", "ideas mine"))
    assert keys(d.say("lucas", "#general", "ideas mine")) == ["idea.list_empty"]


# Ideas: by number ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    "idea show 1", "idée voir 1", "idea vote 1", "idea unvote 1", "idea follow 1", "idea unfollow 1",
    "idea status 1 accepted", "idea post 1", "idea author 1",
])
def test_commands_by_number_answer_as_if_a_private_idea_did_not_exist(d: Driver, command: str) -> None:
    _private_idea(d)
    for who in OUTSIDERS:
        _like_missing(d, who, command)
    with d.session() as s:
        assert s.scalar(select(Idea.vote_count)) == 0
        assert s.scalars(select(IdeaVote)).all() == [] and s.scalars(select(IdeaFollow)).all() == []


def test_an_admin_who_is_not_a_member_cannot_look_up_a_private_ideas_author(d: Driver, settings) -> None:  # type: ignore[no-untyped-def]
    _private_idea(d)
    settings.admins = ["camille", "nathan"]
    _like_missing(d, "nathan", "idea author 1")
    assert "Thomas" in everything(d.say("camille", "#general", "idea author 1"))


def test_members_vote_follow_and_see_the_card(d: Driver) -> None:
    _private_idea(d)
    shown = d.say("sophie", "#general", "idea show 1")
    assert keys(shown) == ["idea.shown"] and SECRET in everything(shown)
    voted = d.say("julien", "#general", "idea vote 1")
    assert keys(voted) == ["idea.card", "idea.voted"] and outbound(voted, "idea.card").to.id == "direction"
    assert keys(d.say("sophie", "#general", "idea follow 1")) == ["idea.followed"]


def test_leaving_the_channel_hides_its_ideas_and_stops_notifications(d: Driver) -> None:
    _private_idea(d)
    d.say("julien", "#general", "idea vote 1")
    d.say("sophie", "#general", "idea follow 1")
    _leave(d, "julien", "direction")
    _like_missing(d, "julien", "idea show 1")
    assert keys(d.say("camille", "#direction", "idea status 1 accepted")) == ["idea.card", "idea.status_changed"]
    d.clock.advance(timedelta(hours=6))
    told = {e.to.id for e in d.job("notifications.flush") if isinstance(e, Outbound) and isinstance(e.to, UserRef)}
    assert "sophie" in told and "thomas" in told and "julien" not in told


def test_a_channel_that_becomes_private_follows_its_current_members(d: Driver) -> None:
    posted = d.say("thomas", "#general", "idea Badge readers at every door #badges")
    assert outbound(posted, "idea.card").to.id == "ideas"
    _leave(d, "emma", "ideas")
    assert "Badge readers" in everything(d.say("emma", "#general", "ideas new"))  # public: members or not
    with d.session() as s:
        s.execute(update(Conversation).where(Conversation.name == "ideas").values(kind="private"))
    assert keys(d.say("emma", "#general", "ideas new")) == ["idea.list_empty"]
    assert "Badge readers" in everything(d.say("lucas", "#general", "ideas new"))  # still a member


# Ideas: submitting --------------------------------------------------------------------------
def test_duplicates_offered_are_only_ideas_the_submitter_may_read(d: Driver) -> None:
    _private_idea(d)
    member = d.say("julien", "#general", "idea BLUEBIRD integration plan for ACME #bluebird")
    assert keys(member) == ["idea.duplicates"] and "#1 " in everything(member)
    outsider = d.say("emma", "#general", "idea BLUEBIRD integration plan for ACME #bluebird")
    assert keys(outsider) == ["idea.card", "idea.posted"] and SECRET not in everything(outsider)


def test_a_draft_from_a_private_channel_is_published_there_wherever_it_is_confirmed(d: Driver) -> None:
    _private_idea(d)
    assert keys(d.say("sophie", "#direction", "idea BLUEBIRD integration plan for ACME")) == ["idea.duplicates"]
    assert keys(d.say("sophie", "#general", "idea post 2")) == ["idea.card", "idea.posted"]
    assert outbound(d.say("sophie", "#general", "idea vote 1"), "idea.card").to.id == "direction"
    assert keys(d.say("emma", "#general", "ideas new")) == ["idea.list_empty"]


def test_an_idea_sent_to_the_bot_in_a_dm_goes_to_the_ideas_box_for_everyone(d: Driver) -> None:
    posted = d.say("emma", "dm", "idea Bike shed in the car park #commute")
    assert outbound(posted, "idea.card").to.id == "ideas"
    with d.session() as s:  # the bot left #ideas: the card stays in the DM, the idea is still everyone's
        s.execute(update(Conversation).where(Conversation.name == "ideas").values(bot_member=False))
    posted = d.say("lea", "dm", "idea Showers for cyclists #commute")
    assert outbound(posted, "idea.card").to.id == "dm-lea"
    listed = everything(d.say("nathan", "#general", "ideas #commute"))
    assert "Bike shed" in listed and "Showers for cyclists" in listed


def test_the_ideas_channel_must_be_public(d: Driver) -> None:
    assert keys(d.say("camille", "#general", "ideas channel #direction")) == ["idea.channel_not_public"]


# Ideas: campaigns -----------------------------------------------------------------------------
def test_a_private_idea_does_not_join_a_public_campaign_nor_a_public_idea_a_private_one(d: Driver) -> None:
    assert keys(d.say("julien", "#sales", 'idea campaign "Cut travel costs" until 2026-11-24 #travel')) == [
        "idea.campaign_card", "idea.campaign_started"]
    assert keys(d.say("camille", "#direction", 'idea campaign "Acme merger" until 2026-11-24 #bluebird')) == [
        "idea.campaign_card", "idea.campaign_started"]
    private = d.say("thomas", "#direction", "idea BLUEBIRD travel budget #travel")
    assert outbound(private, "idea.card").to.id == "direction" and "Cut travel costs" not in everything(private)
    joined = d.say("thomas", "#direction", f"idea {SECRET} #bluebird")
    assert "Acme merger" in everything(joined)
    public = d.say("emma", "#general", "idea Open questions about the merger #bluebird")
    assert outbound(public, "idea.card").to.id == "ideas" and "Acme merger" not in everything(public)
    d.clock.advance(timedelta(days=2))
    summaries = {e.to.id: everything([e]) for e in d.job("ideas.campaign_summaries") if isinstance(e, Outbound)}
    assert "BLUEBIRD" not in summaries["sales"] and SECRET in summaries["direction"]


def test_a_campaign_summary_shows_only_what_its_channel_may_read(d: Driver) -> None:
    d.say("julien", "#sales", 'idea campaign "Cut travel costs" until 2026-11-24 #travel')
    for text in ("Share taxis from the airport #travel", "Video calls for first client meetings #travel"):
        assert outbound(d.say("thomas", "#general", f"idea {text}"), "idea.card").to.id == "sales"
    with d.session() as s:  # as if idea #2 had been filed in #direction before these rules
        assert s.scalar(select(func.count(Idea.id)).where(Idea.campaign_id.is_not(None), Idea.status == "new")) == 2
        direction = s.scalar(select(Conversation.id).where(Conversation.name == "direction"))
        s.execute(update(Idea).where(Idea.number == 2).values(conversation_id=direction))
        assert s.scalar(select(IdeaCampaign.conversation_id)) != direction
    d.clock.advance(timedelta(days=2))
    [summary] = d.job("ideas.campaign_summaries")
    assert isinstance(summary, Outbound) and summary.to.id == "sales"
    assert "Share taxis" in everything([summary]) and "Video calls" not in everything([summary])
    assert summary.reply.params["count"] == 1


# Kudos ----------------------------------------------------------------------------------------
def _kudos(d: Driver) -> None:
    assert keys(d.say("thomas", "#direction", "thanks @sophie for the BLUEBIRD numbers")) == ["kudos.card"]
    assert keys(d.say("emma", "#general", "thanks @lucas for the review")) == ["kudos.card"]


@pytest.mark.parametrize("who, where, sees", [
    ("emma", "#general", False), ("emma", "dm", False), ("nathan", "#engineering", False),
    ("thomas", "#general", True),  # a member, and the answer is his alone
    ("thomas", "#direction", True), ("julien", "dm", True), ("camille", "#direction", True),
])
def test_kudos_top_counts_private_thanks_only_for_their_members(d: Driver, who: str, where: str, sees: bool) -> None:
    _kudos(d)
    answer = d.say(who, where, "kudos top week")
    assert keys(answer) == ["kudos.top"]
    text = everything(answer)
    assert "Lucas Petit — 1" in text
    assert ("Sophie" in text) is sees
    assert answer[0].reply.params["count"] == (2 if sees else 1)  # type: ignore[union-attr]


@pytest.mark.parametrize("period", ["week", "month", "all"])
def test_kudos_top_of_every_period_leaves_out_a_private_channel(d: Driver, period: str) -> None:
    assert keys(d.say("thomas", "#direction", "thanks @sophie for the BLUEBIRD numbers")) == ["kudos.card"]
    assert keys(d.say("lucas", "#general", f"kudos top {period}")) == ["kudos.top_empty"]
    assert "Sophie" in everything(d.say("sophie", "dm", f"kudos top {period}"))


def test_kudos_of_a_channel_one_left_no_longer_count(d: Driver) -> None:
    _kudos(d)
    _leave(d, "julien", "direction")
    assert "Sophie" not in everything(d.say("julien", "dm", "kudos top week"))


def test_kudos_in_a_dm_with_the_bot_count_in_public_totals(d: Driver) -> None:
    assert keys(d.say("emma", "dm", "thanks @hugo for the slides")) == ["kudos.card"]
    assert "Hugo Leroy — 1" in everything(d.say("nathan", "#general", "kudos top"))


# Digests and export ---------------------------------------------------------------------------
def test_digest_sections_never_read_a_private_channel_even_if_asked(d: Driver) -> None:
    _private_idea(d)
    d.say("lucas", "#general", "idea Standing desks on request #office")
    _kudos(d)
    end = d.clock.now() + timedelta(hours=1)
    with d.session() as s:
        ids = list(s.scalars(select(Conversation.id).where(Conversation.name.in_(("direction", "ideas", "general")))))
        source = StoreContributions()
        ideas = " ".join(e.text for e in source.ideas(s, ids, end - timedelta(days=7), end, 10))
        kudos = " ".join(e.text for e in source.kudos(s, ids, end - timedelta(days=7), end, 10))
    assert "Standing desks" in ideas and "BLUEBIRD" not in ideas
    assert "the review" in kudos and "BLUEBIRD" not in kudos


def test_export_blanks_the_title_of_an_idea_one_voted_for_but_may_no_longer_read(d: Driver) -> None:
    _private_idea(d)
    d.say("julien", "#general", "idea vote 1")
    with d.session() as s:
        julien = s.scalar(select(Person.id).where(Person.handle == "julien"))
        assert export_person(s, julien)["idea_votes"][0]["title"] == SECRET
    _leave(d, "julien", "direction")
    with d.session() as s:
        assert export_person(s, julien)["idea_votes"] == [{"idea": 1, "title": "", "at": d.clock.now().isoformat()}]
