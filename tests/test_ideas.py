"""Ideas box: parsing, duplicates, anchored card updates, votes, workflow notifications,
anonymity in every rendering, the audited author look-up, limits, forms and campaigns."""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core import Bot
from bot.types import Outbound, UserRef
from handlers.ideas import parse_idea_text, parse_status
from store.ideas import similarity
from store.models.contribution import Idea, IdeaCampaign, IdeaVote
from store.models.core import AuditLog
from tests.test_ideas_support import Driver, everything, keys, outbound

ANON = "Moreau"  # Léa Moreau


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def test_parse_idea_text_splits_title_details_and_trailing_tags() -> None:
    assert parse_idea_text("Car pooling — share rides to save money #travel #budget") == (
        "Car pooling", "share rides to save money", ["travel", "budget"])
    title, details, tags = parse_idea_text("Better #onboarding for interns")
    assert (title, details, tags) == ("Better #onboarding for interns", "", ["onboarding"])


@pytest.mark.parametrize("text, status, rest", [
    ("under review", "under_review", ""), ("à l'étude", "under_review", ""), ("en cours", "in_progress", ""),
    ("declined too expensive for now", "declined", "too expensive for now"), ("refusée trop cher", "declined", "trop cher"),
    ("maybe", None, "maybe"),
])
def test_parse_status_in_both_languages(text: str, status: str | None, rest: str) -> None:
    assert parse_status(text) == (status, rest)


def test_similarity_is_fuzzy_across_languages_through_tags() -> None:
    assert similarity("Car pooling for client visits", ["travel"], "Carpooling for customer visits", ["travel"]) >= 72
    assert similarity("Covoiturage pour les visites clients", ["travel"], "Car pooling for client visits", ["travel"]) >= 72
    with_tag = similarity("Covoiturage pour les visites clients", ["travel"], "Car pooling for client visits", ["travel"])
    assert with_tag > similarity("Covoiturage pour les visites clients", [], "Car pooling for client visits", [])
    assert similarity("Weekly demo of what shipped", ["demo"], "Car pooling for client visits", ["travel"]) < 50


def test_duplicate_is_offered_then_posted_anyway_and_vote_instead_works(d: Driver) -> None:
    assert keys(d.say("thomas", "#general", "idea Car pooling for client visits #travel")) == ["idea.card", "idea.posted"]
    offer = d.say("lea", "#general", "idea Carpooling for customer visits #travel")
    assert keys(offer) == ["idea.duplicates"]
    card = outbound(offer, "idea.duplicates").reply.card
    assert card is not None and [a.command for a in card.actions] == ["idea vote 1", "idea post 2"]
    with d.session() as s:
        assert s.scalar(select(Idea.status).where(Idea.number == 2)) == "draft"
    assert keys(d.say("lea", "#general", "idea vote 1")) == ["idea.card", "idea.voted"]
    assert keys(d.say("thomas", "#general", "ideas new")) == ["idea.list"]
    assert "#2" not in everything(d.say("thomas", "#general", "ideas new"))  # drafts are nobody's business
    assert keys(d.say("thomas", "#general", "idea post 2")) == ["idea.not_found"]  # not his draft
    assert keys(d.say("lea", "#general", "idea post 2")) == ["idea.card", "idea.posted"]
    assert keys(d.say("lea", "#general", "idea post 2")) == ["idea.already_posted"]


def test_card_is_updated_in_place_and_votes_count_once_without_the_author(d: Driver) -> None:
    posted = outbound(d.say("thomas", "#general", "idea Weekly demo of what shipped #demo"), "idea.card")
    assert posted.anchor == "idea:1" and posted.to.id == "ideas"  # the workspace's #ideas channel
    first = outbound(d.say("emma", "#general", "idea vote 1"), "idea.card")
    assert first.anchor == "idea:1" and first.to == posted.to and first.reply.params == {"id": 1}
    assert keys(d.say("emma", "#general", "idea vote 1")) == ["idea.already_voted"]
    assert keys(d.say("thomas", "#general", "idea vote 1")) == ["idea.own_vote"]
    with d.session() as s:
        assert s.scalar(select(Idea.vote_count).where(Idea.number == 1)) == 1
        assert len(s.scalars(select(IdeaVote)).all()) == 1
    assert keys(d.say("emma", "#general", "idea unvote 1")) == ["idea.card", "idea.unvoted"]
    assert keys(d.say("emma", "#general", "idea unvote 1")) == ["idea.not_voted"]
    assert keys(d.say("emma", "#general", "idea vote 99")) == ["idea.not_found"]


def test_status_workflow_roles_reason_and_notifications(d: Driver) -> None:
    d.say("thomas", "#general", "idea Weekly demo of what shipped #demo")
    d.say("julien", "#general", "idea vote 1")
    d.say("hugo", "#general", "idea follow 1")
    refused = d.say("sophie", "#general", "idea status 1 accepted")  # référent of #sales, not of #ideas
    assert keys(refused) == ["error.not_allowed"] and "camille" in everything(refused)
    assert keys(d.say("camille", "#general", "idea status 1 declined")) == ["idea.reason_required"]
    assert keys(d.say("camille", "#general", "idea status 1 dunno")) == ["idea.status_unknown"]
    changed = d.say("camille", "#general", "idea status 1 declined not this year")
    assert keys(changed) == ["idea.card", "idea.status_changed"]
    assert "not this year" in everything(changed)
    assert keys(d.say("camille", "#general", "idea status 1 accepted")) == ["idea.status_final"]
    d.clock.advance(timedelta(minutes=10))
    dms = [e for e in d.job("notifications.flush") if isinstance(e, Outbound)]
    told = {e.to.id for e in dms if isinstance(e.to, UserRef)}
    assert {"thomas", "julien", "hugo"} <= told and "camille" not in told  # not the one who changed it
    assert all("not this year" in e.reply.text for e in dms if e.to.id in ("julien", "hugo"))  # type: ignore[union-attr]


def test_anonymous_author_is_hidden_everywhere_but_the_audited_lookup(d: Driver) -> None:
    seen = d.say("lea", "#general", "idea anon Quiet room on each floor #wellbeing")
    assert keys(seen) == ["idea.card", "idea.posted_anon"]
    seen += d.say("emma", "#general", "idea vote 1")
    seen += d.say("camille", "#general", "idea status 1 under review")
    seen += d.say("thomas", "#general", "ideas top")
    seen += d.say("thomas", "#general", "ideas #wellbeing")
    seen += d.say("thomas", "#general", "ideas under review")
    seen += d.say("thomas", "#general", "idea show 1")
    seen += d.say("hugo", "#general", "idea Quiet rooms on every floor #wellbeing")  # the duplicate offer lists it
    d.clock.advance(timedelta(minutes=10))
    seen += [e for e in d.job("notifications.flush") if isinstance(e, Outbound) and e.to.id != "lea"]  # type: ignore[union-attr]
    text = everything(seen)
    assert "Quiet room" in text and ANON not in text and "Léa" not in text and "lea" not in text.replace("Release", "")
    assert keys(d.say("thomas", "#general", "idea author 1")) == ["error.not_allowed"]
    revealed = d.say("camille", "#general", "idea author 1")
    assert keys(revealed) == ["idea.author_is"] and ANON in everything(revealed)
    with d.session() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "idea.author_revealed")).all()
    assert len(audit) == 1 and "#1" in audit[0].detail


def test_daily_limit_counts_today_only(d: Driver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ideas_daily_limit = 2
    assert keys(d.say("nathan", "#general", "idea First thing to improve #a")) == ["idea.card", "idea.posted"]
    assert keys(d.say("nathan", "#general", "idea Second unrelated topic #b")) == ["idea.card", "idea.posted"]
    assert keys(d.say("nathan", "#general", "idea Third suggestion here #c")) == ["idea.daily_limit"]
    d.clock.advance(timedelta(days=1))
    assert keys(d.say("nathan", "#general", "idea Third suggestion here #c")) == ["idea.card", "idea.posted"]


def test_form_without_arguments_and_from_a_shortcut_then_submitted(d: Driver) -> None:
    blank = outbound(d.say("emma", "#general", "idea"), "idea.form").reply.form
    assert blank is not None and blank.submit_command == "idea submit"
    assert [f.name for f in blank.fields] == ["title", "details", "tags", "anonymous", "source"]
    shortcut = d.say("emma", "#general", "idea", via="shortcut", source_text="We should share the #travel budget across teams",
                     source_permalink="console://general/42")
    form = outbound(shortcut, "idea.form").reply.form
    assert form is not None
    values = {f.name: f.value for f in form.fields}
    assert values["source"] == "console://general/42" and values["tags"] == "#travel" and values["title"].startswith("We should")
    submitted = d.say("emma", "#general", "idea submit", via="form", form_values=values)
    assert keys(submitted) == ["idea.card", "idea.posted"] and "console://general/42" in everything(submitted)
    anonymous = dict(values, title="Pool the travel budgets of all teams", tags="#budget", anonymous="true")
    submitted = d.say("emma", "#general", "idea submit", via="form", form_values=anonymous)
    assert keys(submitted) == ["idea.card", "idea.posted_anon"]
    shown = everything([outbound(submitted, "idea.card")])
    assert "Emma" not in shown and "console://general/42" not in shown  # the source message would name her
    assert keys(d.say("emma", "#general", "idea submit", via="form", form_values={"title": "  "})) == ["idea.title_required"]


def test_campaign_collects_tagged_ideas_and_posts_one_summary(d: Driver, bot: Bot) -> None:
    assert keys(d.say("julien", "#sales", 'idea campaign "Cut travel costs" until 2026-11-24 #travel')) == [
        "idea.campaign_card", "idea.campaign_started"]
    assert keys(d.say("julien", "#sales", 'idea campaign "Past" until 2026-11-01 #travel')) == ["idea.campaign_past"]
    assert keys(d.say("julien", "#sales", "idea campaign no date #travel")) == ["idea.campaign_date"]
    posted = outbound(d.say("thomas", "#general", "idea Share taxis from the airport #travel"), "idea.card")
    assert posted.to.id == "sales" and "Cut travel costs" in everything([posted])
    d.say("lucas", "#general", "idea vote 1")
    assert d.job("ideas.campaign_summaries") == []  # still open
    d.clock.advance(timedelta(days=2))
    first = d.job("ideas.campaign_summaries")
    assert keys(first) == ["idea.campaign_summary"] and "Share taxis" in everything(first)
    assert d.job("ideas.campaign_summaries") == []  # once
    late = outbound(d.say("hugo", "#general", "idea Train instead of plane #travel"), "idea.card")
    assert late.to.id == "ideas"  # the campaign is over


def test_ideas_channel_setting_is_for_admins(d: Driver) -> None:
    assert keys(d.say("thomas", "#general", "ideas channel #engineering")) == ["error.not_allowed"]
    assert keys(d.say("camille", "#general", "ideas channel #nowhere")) == ["error.unknown_channel"]
    assert keys(d.say("camille", "#general", "ideas channel #engineering")) == ["idea.channel_set"]
    assert outbound(d.say("thomas", "#general", "idea Lunch and learn #learning"), "idea.card").to.id == "engineering"


def test_known_topics_link_french_and_english_titles(d: Driver) -> None:
    """The expertise aliases know GDPR is RGPD and training is formation: no shared word, same idea."""
    assert keys(d.say("thomas", "#general", "idea GDPR training for the sales team")) == ["idea.card", "idea.posted"]
    assert keys(d.say("hugo", "#general", "idea GDPR audit of the CRM")) == ["idea.card", "idea.posted"]  # one topic only
    offer = d.say("sophie", "#general", "idée Formation RGPD pour les commerciaux")
    assert keys(offer) == ["idea.duplicates"] and "#1 " in everything(offer) and "#2 " not in everything(offer)


@pytest.mark.postgresql_only
def test_concurrent_votes_all_count(db_url: str, clock) -> None:  # type: ignore[no-untyped-def]
    import threading

    from store import ideas as ideas_store
    from store.db import Database
    from store.models.core import Person, Workspace

    db = Database(db_url)
    now = clock.now()
    with db.session("T") as s:
        s.add(Workspace(id="T", platform="console"))
        s.flush()
        people = [Person(external_id=f"p{i}", handle=f"p{i}", created_at=now, updated_at=now) for i in range(5)]
        s.add_all(people)
        s.flush()
        ideas_store.create_idea(s, title="x", details="", tags=[], author_id=people[0].id, anonymous=False, status="new", now=now,
                                conversation_id=None)
        voters = [p.id for p in people[1:]]
    barrier = threading.Barrier(len(voters))

    def vote(person_id: int) -> None:
        with db.session("T") as s:
            idea = s.scalar(select(Idea))
            barrier.wait()
            ideas_store.add_vote(s, "T", idea, person_id, now)

    threads = [threading.Thread(target=vote, args=(p,)) for p in voters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session("T") as s:
        assert s.scalar(select(Idea.vote_count)) == len(voters)
    db.dispose()


@pytest.mark.parametrize("text, ends", [
    ('idea campaign "Cut travel costs" until December 15 #travel', "2026-12-15"),
    ("idea campaign Cut travel costs until friday #travel", "2026-11-27"),
    ("idée campagne Réduire les frais jusqu'au 15 décembre #déplacements", "2026-12-15"),
    ('idée campagne "Travailler jusqu\'au bout" jusqu\'à vendredi #déplacements', "2026-11-27"),
    ("idea campaign Cut travel costs until 15/12/2026 #travel", "2026-12-15"),
])
def test_a_campaign_ends_on_the_day_written_in_words(d: Driver, text: str, ends: str) -> None:
    """Monday 23 November 2026: the campaign runs to the end of the named day in the channel's zone."""
    started = d.say("julien", "#sales", text)
    assert keys(started) == ["idea.campaign_card", "idea.campaign_started"]
    with d.session() as s:
        campaign = s.scalars(select(IdeaCampaign)).one()
        assert campaign.title in text and "#" not in campaign.title and "jusqu" not in campaign.title.casefold()[-8:]
        assert campaign.ends_at.astimezone(ZoneInfo("Europe/Paris")).isoformat().startswith(
            (date.fromisoformat(ends) + timedelta(days=1)).isoformat() + "T00:00")


def test_a_campaign_date_that_is_not_one_is_refused(d: Driver) -> None:
    assert keys(d.say("julien", "#sales", "idea campaign Cut costs until someday #travel")) == ["idea.campaign_date"]
    assert keys(d.say("julien", "#sales", "idée campagne Réduire jusqu'au 3 octobre 2026 #déplacements")) == [
        "idea.campaign_past"]
