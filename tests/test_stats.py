"""Adoption analytics through the core (issue 15): people post, reply, react, vote and ask in a
channel over simulated weeks; what the animator's `stats` shows, what is hidden, who is refused,
and that a private channel never reaches an organisation figure."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import Bot
from bot.types import Outbound, ReactionAdded, UserRef
from store import analytics
from store.analytics import Scope, Viewer, suppress_partition
from store.demo import DEMO_TENANT
from store.models.analytics import ActivityDay, RollupDay
from store.models.contribution import HelpRequest
from store.models.core import Conversation, Person
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def react(d: Driver, who: str, where: str, message_id: str) -> None:
    conv = d.conversation(who, where)
    d.bot.handle(ReactionAdded(conversation=conv, user=UserRef("console", DEMO_TENANT, who), message_id=message_id,
                               reaction="thumbsup", removed=False))


def post(d: Driver, who: str, where: str, text: str, **kw: object) -> str:
    msg = d.message(who, where, text, addressed=False, via="message", **kw)
    d.bot.handle(msg)
    return msg.id


def person_id(d: Driver, handle: str) -> int:
    with d.session() as s:
        return s.scalar(select(Person.id).where(Person.handle == handle))


def channel_id(d: Driver, name: str) -> int:
    with d.session() as s:
        return s.scalar(select(Conversation.id).where(Conversation.name == name))


def report(d: Driver, who: str, scope: Scope, days: int = 7, admin: bool = False) -> analytics.ScopeReport | None:
    with d.session() as s:
        return analytics.report(s, Viewer(person_id(d, who), admin), scope, d.clock.now().date(), days)


def roll(d: Driver) -> None:
    d.job("analytics.rollup")


def two_weeks_in_sales(d: Driver) -> None:
    """Week 1 (Mon 23 Nov): five people of #sales (13 members) post, two reply in a thread,
    one asks for help; week 2 (Mon 30 Nov): five others take part for the first time, with
    sophie, and two react. Rolled up in between."""
    root = post(d, "sophie", "#sales", "Nouvel appel d'offres Airbus : qui a déjà répondu ?")
    post(d, "chloe", "#sales", "Moi, l'an dernier", thread_id=root)
    post(d, "nathan", "#sales", "Je regarde la grille", thread_id=root)
    post(d, "sarah", "#sales", "Réunion commerciale jeudi")
    post(d, "james", "#sales", "Pricing deck updated")
    d.clock.advance(timedelta(days=7))
    roll(d)
    for who in ("charlotte", "mathis", "pauline", "benoit", "laura", "sophie"):
        post(d, who, "#sales", f"Point hebdo de {who}")
    react(d, "chloe", "#sales", root)
    react(d, "nathan", "#sales", root)


def test_the_animator_sees_the_right_counts_over_two_weeks(d: Driver) -> None:
    two_weeks_in_sales(d)
    sales = Scope("channel", channel_id(d, "sales"))
    week = report(d, "julien", sales, 7)
    assert week is not None
    now, before = week.current, week.previous
    assert (now.members, now.contributors, now.reactors_only, now.silent) == (13, 6, None, None)  # 2 reacted only: hidden
    assert (before.members, before.contributors, before.reactors_only, before.silent) == (13, 5, 0, 8)
    assert now.first_timers == 5 and before.first_timers == 5
    assert (now.posts, now.replies, now.reactions) == (6, 0, 2) and (before.posts, before.replies) == (3, 2)
    assert now.rate == pytest.approx(6 / 13)
    assert [t.title for t in week.threads] == [] and [t.replies for t in report(d, "julien", sales, 28).threads] == [2]
    with d.session() as s:  # week 1 came from the roll-up rows, today live
        assert s.scalar(select(RollupDay.id).where(RollupDay.day == (d.clock.now() - timedelta(days=7)).date()))
        assert s.scalars(select(ActivityDay)).all() and not analytics.is_rolled(s, d.clock.now().date())

    out = d.say("julien", "dm", "stats #sales")  # julien reads French
    card = outbound(out, "stats.report")
    assert card.reply.private or card.to.id == "dm-julien"
    text = everything(out)
    assert "Contributeurs — 7 jours : 6 (+1) · 28 jours : masqué" in text
    assert "Premières contributions — 7 jours : 5" in text
    assert "Participation — 7 jours : 46 %" in text and "20–25 %" in text
    assert "Nouvel appel d'offres Airbus" in text and "2 réponses" in text
    assert card.reply.picture is not None and card.reply.picture.png.startswith(b"\x89PNG")
    assert "thomas" not in text.casefold() and "charlotte" not in text.casefold()  # nobody is named


def test_a_group_of_four_is_hidden_and_its_complement_too(d: Driver) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah"):
        post(d, who, "#sales", "bonjour")
    r = report(d, "sophie", Scope("channel", channel_id(d, "sales")))
    assert r is not None
    assert r.current.members == 13
    assert r.current.contributors is None and r.current.rate is None
    assert r.current.silent is None  # else 13 - 0 - 9 would give the 4 back
    text = everything(d.say("sophie", "dm", "stats #sales 7d"))
    lines = {line.split(" — ")[0].split()[-1]: line for line in text.splitlines() if " — 7 jours" in line}
    assert lines["Contributeurs"].endswith("7 jours : moins de 5")
    assert lines["Silencieux (ni message ni réaction)".split()[-1]].endswith("7 jours : masqué")
    # a breakdown: #sales by department is Sales 12 + Support 1: the 1 is hidden, so the 12 too
    assert [(row.label, row.members) for row in r.breakdown] == [("Sales", None), ("Support", None)]


@pytest.mark.parametrize("values, minimum, shown", [
    ([10, 4, 6], 5, [10, None, None]),
    ([10, 0, 6], 5, [10, 0, 6]),
    ([12, 1], 5, [None, None]),
    ([20, 3, 3, 9], 5, [20, None, None, 9]),
    ([20, 1, 1, 9], 5, [20, None, None, None]),
    ([6, 5], 5, [6, 5]),
    ([7, 2], 3, [None, None]),
])
def test_suppression_never_lets_a_small_group_be_subtracted(values: list[int], minimum: int, shown: list[int | None]) -> None:
    got = suppress_partition(values, minimum)
    assert got == shown
    hidden = [v for v, g in zip(values, got) if g is None]
    assert not hidden or (len(hidden) >= 2 and sum(hidden) >= minimum) or len(hidden) == len([v for v in values if v])


def test_a_non_animator_is_refused_with_who_can_and_reads_nothing(d: Driver) -> None:
    two_weeks_in_sales(d)
    refused = d.say("thomas", "dm", "stats #sales")
    assert keys(refused) == ["error.not_allowed"]
    text = everything(refused)
    assert "Julien" in text and "Sophie" in text and "camille" in text
    sales = Scope("channel", channel_id(d, "sales"))
    thomas = Viewer(person_id(d, "thomas"))
    today = d.clock.now().date()
    with d.session() as s:
        assert analytics.report(s, thomas, sales, today, 7) is None
        assert analytics.weekly_series(s, thomas, sales, today) == []
        assert analytics.export_rows(s, thomas, today, 90) is None
        assert analytics.dormant_channels(s, thomas, today) is None
        assert analytics.report(s, thomas, Scope("all"), today, 7) is None
        assert analytics.report(s, thomas, Scope("department", "Sales"), today, 7) is None
        assert not analytics.may_read(s, thomas, Scope("site", "Lyon"))
        assert analytics.readable_scopes(s, thomas) == [Scope("me")]
        mine = analytics.my_activity(s, thomas, today, 28)
        assert sum(mine.counts.values()) == 0  # thomas did nothing: other people's activity is not his
    for command in ("stats all", "stats export 90d", "stats dormant", "stats department Sales", "stats minimum 3"):
        assert keys(d.say("thomas", "dm", command)) == ["error.not_allowed"], command


def test_a_private_channel_never_reaches_the_organisation_report(d: Driver) -> None:
    for who in ("camille", "sophie", "thomas", "julien"):
        post(d, who, "#direction", "Confidentiel : réorganisation")
    for who in ("lucas", "emma", "hugo", "lea", "nathan", "manon"):
        post(d, who, "#general", "hello")
    d.clock.advance(timedelta(days=1))
    roll(d)
    org = report(d, "camille", Scope("all"), 7, admin=True)
    assert org is not None and org.current.posts == 6 and org.current.contributors == 6
    sales_dept = report(d, "camille", Scope("department", "Sales"), 7, admin=True)
    assert sales_dept is not None and sales_dept.current.posts == 1  # nathan in #general; sophie's #direction post is not there
    own = report(d, "camille", Scope("channel", channel_id(d, "direction")), 7, admin=True)
    assert own is not None and own.current.too_small  # camille may read it (a member), but 4 members: no figure
    text = everything(d.say("camille", "dm", "stats all"))
    assert "direction" not in text.casefold()
    export = outbound(d.say("camille", "dm", "stats export 90d"), "stats.exported").reply.attachment
    assert export is not None and "direction" not in export[1].decode("utf-8-sig")
    # members who are no animator are refused; a non-member is told the channel does not exist
    assert keys(d.say("thomas", "dm", "stats #direction")) == ["error.not_allowed"]
    assert keys(d.say("lucas", "dm", "stats #direction")) == ["error.unknown_channel"]
    with d.session() as s:
        lucas = Viewer(person_id(d, "lucas"), admin=True)  # even an admin who is no member
        assert not analytics.may_read(s, lucas, Scope("channel", channel_id(d, "direction")))


def test_an_empty_workspace_says_no_activity_yet(d: Driver) -> None:
    assert keys(d.say("julien", "dm", "stats #sales")) == ["stats.no_activity"]
    assert keys(d.say("camille", "dm", "stats all")) == ["stats.no_activity"]
    assert keys(d.say("camille", "dm", "stats dormant")) == ["stats.dormant"]  # nothing posted for 400 days
    assert keys(d.say("thomas", "dm", "stats me")) == ["stats.me_nothing"]
    roll(d)
    with d.session() as s:
        assert analytics.pending_days(s, d.clock.now().date()) == []


def test_periods_and_their_limit(d: Driver) -> None:
    post(d, "sophie", "#sales", "bonjour")
    assert keys(d.say("sophie", "dm", "stats #sales 13 months")) == ["stats.period_too_long"]
    assert keys(d.say("sophie", "dm", "statistiques #sales 13 mois")) == ["stats.period_too_long"]
    for period, days in (("12 weeks", 84), ("3 mois", 91), ("90j", 90), ("28d", 28), ("12 semaines", 84)):
        out = d.say("sophie", "dm", f"stats #sales {period}")
        assert keys(out) == ["stats.report"], period
        assert outbound(out, "stats.report").reply.params["days"] == days
    assert keys(d.say("sophie", "dm", "stats #sales 12 months")) == ["stats.report"]


def test_unknown_scopes_get_the_closest_suggestion(d: Driver) -> None:
    out = d.say("camille", "dm", "stats #sals")
    assert keys(out) == ["stats.unknown_channel_suggest"] and "#sales" in everything(out)
    out = d.say("camille", "dm", "stats department Sals")
    assert keys(out) == ["stats.unknown_scope_suggest"] and "Sales" in everything(out)
    assert keys(d.say("camille", "dm", "stats site Lyonn")) == ["stats.unknown_scope_suggest"]
    assert keys(d.say("camille", "dm", "stats blah")) == ["stats.unknown_request"]


def test_a_department_referent_reads_their_department_only(d: Driver) -> None:
    out = d.say("camille", "dm", "role add @sophie referent department sales")
    assert keys(out) == ["roles.added"] and "Sales" in everything(out)
    assert keys(d.say("camille", "dm", "rôle ajouter @thomas référent site Lyonn")) == ["stats.unknown_scope_suggest"]
    assert keys(d.say("camille", "dm", "rôle ajouter @thomas référent site Lyon")) == ["roles.added"]
    for who in ("sophie", "chloe", "nathan", "sarah", "james", "charlotte"):
        post(d, who, "#general", "hello")
    out = d.say("sophie", "dm", "statistiques service Sales")
    assert keys(out) == ["stats.report"]
    r = report(d, "sophie", Scope("department", "Sales"))
    assert r is not None and (r.current.members, r.current.contributors) == (12, 6)
    assert r.breakdown_by == "site" and [(b.label, b.members, b.contributors) for b in r.breakdown] == [
        ("Paris", 6, None), ("Toulouse", 6, None)]  # 4 and 2 contributors: both hidden
    assert keys(d.say("sophie", "dm", "stats site Lyon")) == ["error.not_allowed"]
    assert keys(d.say("thomas", "dm", "stats site lyon")) == ["stats.no_activity"]
    # a department's référent is no channel's
    assert keys(d.say("sophie", "dm", "stats #general")) == ["error.not_allowed"]
    assert "Sales" in everything(d.say("camille", "dm", "role list"))
    assert keys(d.say("camille", "dm", "role remove @sophie referent department Sales")) == ["roles.removed"]
    assert keys(d.say("sophie", "dm", "stats department Sales")) == ["error.not_allowed"]


def test_help_answers_and_reply_times(d: Driver) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah", "james"):
        post(d, who, "#sales", "bonjour")
    d.say("chloe", "#sales", "ask who knows the Airbus tender process?")
    d.say("nathan", "#sales", "ask where is the 2026 price grid?")
    with d.session() as s:
        first = s.scalar(select(HelpRequest).order_by(HelpRequest.id))
        s.execute(update(HelpRequest).where(HelpRequest.id == first.id)
                  .values(answered_at=first.created_at + timedelta(hours=3)))
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")))
    assert r is not None
    assert (r.current.help_asked, r.current.help_answered, r.current.help_unanswered) == (2, 1, 1)
    assert r.current.reply_median == timedelta(hours=3) == r.current.reply_slowest
    text = everything(d.say("julien", "dm", "stats #sales"))
    assert "2 demandes d'aide posées" in text and "médian 3\xa0heures" in text


def test_stats_me_shows_only_ones_own_counts(d: Driver) -> None:
    root = post(d, "thomas", "#support", "Runbook updated")
    post(d, "hugo", "#support", "thanks", thread_id=root)
    react(d, "thomas", "#support", root)
    post(d, "thomas", "#direction", "privé")
    out = d.say("thomas", "dm", "stats me")
    assert keys(out) == ["stats.me"]
    mine = out[0].reply
    assert mine.params["count"] == 2  # two posts; hugo's reply is not his
    assert "hugo" not in everything(out).casefold()


def test_the_roll_up_counts_a_day_once_and_forgetting_keeps_counts(d: Driver, bot: Bot) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah", "james", "thomas"):
        post(d, who, "#sales", "bonjour")
    day = d.clock.now().date()
    d.clock.advance(timedelta(days=1))
    with d.session() as s:
        assert analytics.rollup_day(s, DEMO_TENANT, day) == 6
    with d.session() as s:
        assert analytics.rollup_day(s, DEMO_TENANT, day) == 0  # already claimed
    roll(d)
    with d.session() as s:
        assert len(s.scalars(select(ActivityDay).where(ActivityDay.day == day)).all()) == 6
    assert keys(d.say("thomas", "dm", "forget me confirm")) == ["privacy.forgotten"]
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")))
    assert r is not None and r.current.contributors == 6 and r.current.posts == 6


def test_each_roll_up_row_says_what_part_the_person_took(d: Driver) -> None:
    """`part` (what organisation reports group by) follows the row's counts: 2 for a
    contribution, 1 for a reaction alone."""
    root = post(d, "sophie", "#sales", "bonjour")
    react(d, "chloe", "#sales", root)
    post(d, "nathan", "#sales", "merci", thread_id=root)
    react(d, "nathan", "#sales", root)
    day = d.clock.now().date()
    d.clock.advance(timedelta(days=1))
    with d.session() as s:
        analytics.rollup_day(s, DEMO_TENANT, day)
    with d.session() as s:
        rows = s.scalars(select(ActivityDay).where(ActivityDay.day == day)).all()
        names = {p.id: p.handle for p in s.scalars(select(Person))}
        parts = {names[r.person_id]: r.part for r in rows}
    assert parts == {"sophie": 2, "chloe": 1, "nathan": 2}


def test_minimum_group_size_is_an_admin_setting(d: Driver) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah"):
        post(d, who, "#sales", "bonjour")
    assert keys(d.say("camille", "dm", "stats minimum 11")) == ["stats.minimum_range"]
    assert keys(d.say("camille", "dm", "stats minimum 3")) == ["stats.minimum_set"]
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")))
    assert r is not None and r.current.contributors == 4 and r.min_group == 3


def test_help_stats_gives_every_definition(d: Driver) -> None:
    for command, words in (("help stats", "contributor: posted, replied, submitted an idea"),
                           ("aide stats", "Slack et Teams ne disent pas")):
        out = d.say("james" if command.startswith("help") else "sophie", "dm", command)
        assert keys(out) == ["stats.definitions"]
        assert words.casefold() in everything(out).casefold()


def test_a_scope_under_the_minimum_shows_nothing_not_even_activity(d: Driver) -> None:
    # #direction has 4 members: its animator gets no figure (its posts would be one person's)
    assert keys(d.say("camille", "dm", "role add @julien animator #direction")) == ["roles.added"]
    for who in ("camille", "sophie"):
        post(d, who, "#direction", "Confidentiel")
    out = d.say("julien", "dm", "stats #direction")
    assert keys(out) == ["stats.too_small"]
    r = report(d, "julien", Scope("channel", channel_id(d, "direction")))
    assert r is not None and r.current.too_small and r.current.posts == 0 and r.threads == ()
    with d.session() as s:
        points = analytics.weekly_series(s, Viewer(person_id(d, "julien")), Scope("channel", channel_id(d, "direction")),
                                         d.clock.now().date())
    assert points[-1].members is None and points[-1].contributors is None
    assert all(p.contributors is None or p.members == 0 for p in points)  # weeks before anyone joined: empty


def test_a_renamed_channel_keeps_its_history(d: Driver) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah", "james"):
        post(d, who, "#sales", "bonjour")
    d.clock.advance(timedelta(days=1))
    roll(d)
    with d.session() as s:
        s.execute(update(Conversation).where(Conversation.name == "sales").values(name="ventes"))
    out = d.say("julien", "dm", "stats #ventes")
    assert keys(out) == ["stats.report"]
    r = report(d, "julien", Scope("channel", channel_id(d, "ventes")))
    assert r is not None and r.current.contributors == 5


def test_in_a_channel_stats_alone_means_this_channel_and_language_scopes_work(d: Driver) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah", "james", "charlotte"):
        post(d, who, "#sales", "bonjour")
    out = d.say("sophie", "#sales", "stats")
    card = outbound(out, "stats.report")
    assert card.private_for is not None or card.reply.private  # never shown to the channel
    assert keys(d.say("camille", "dm", "stats language fr")) == ["stats.report"]
    assert keys(d.say("camille", "dm", "statistiques langue anglais")) == ["stats.report"]
    r = report(d, "camille", Scope("language", "en"), admin=True)
    assert r is not None and r.breakdown_by == "department"
    assert (r.current.members, r.current.contributors) == (20, None)  # james and charlotte read English: 2 < 5
    assert keys(d.say("camille", "dm", "stats language klingon")) == ["stats.unknown_scope"]


def test_the_export_is_csv_with_a_bom_and_never_per_person(d: Driver) -> None:
    for who in ("sophie", "chloe", "nathan", "sarah", "james", "charlotte"):
        post(d, who, "#sales", "bonjour")
    reply = outbound(d.say("camille", "dm", "stats export 90d"), "stats.exported").reply
    assert reply.attachment is not None
    name, content = reply.attachment
    assert name.endswith(".csv") and content.startswith("\ufeff".encode("utf-8"))
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0]["scope"] == "all" and {r["scope"] for r in rows} >= {"all", "department", "site", "language", "channel"}
    sales = next(r for r in rows if r["scope"] == "channel" and r["name"] == "sales")
    assert sales["posts"] == "6" and sales["contributors"] == "6" and sales["members"] == "13"
    lyon = next(r for r in rows if r["scope"] == "site" and r["name"] == "Lyon")
    assert lyon["contributors"] == "0"
    handles = {"sophie", "chloe", "nathan", "sarah", "james", "charlotte"}
    assert not any(h in content.decode("utf-8-sig").casefold() for h in handles)


def test_two_workers_rolling_the_same_day_count_it_once(d: Driver) -> None:
    import threading

    for who in ("sophie", "chloe", "nathan", "sarah", "james", "thomas"):
        post(d, who, "#sales", "bonjour")
    day = d.clock.now().date()
    d.clock.advance(timedelta(days=1))
    written: list[int] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        with d.bot.services.db.session(DEMO_TENANT) as s:
            written.append(analytics.rollup_day(s, DEMO_TENANT, day))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(written) == [0, 6]
    with d.session() as s:
        assert len(s.scalars(select(ActivityDay).where(ActivityDay.day == day)).all()) == 6


def test_the_export_of_channels_says_what_each_channel_report_says(d: Driver) -> None:
    two_weeks_in_sales(d)
    for who in ("lucas", "emma", "hugo", "lea", "nathan", "manon", "thomas"):
        post(d, who, "#general", "hello")
    react(d, "sophie", "#general", post(d, "olivia", "#general", "welcome"))
    today = d.clock.now().date()
    with d.session() as s:
        camille = Viewer(person_id(d, "camille"), admin=True)
        rows = {r["name"]: r for r in analytics.export_rows(s, camille, today, 28) or [] if r["scope"] == "channel"}
        assert set(rows) >= {"sales", "general"}
        for name, row in rows.items():
            fig = analytics.report(s, camille, Scope("channel", channel_id(d, name)), today, 28).current  # type: ignore[union-attr]
            for column, value in (("members", fig.members), ("contributors", fig.contributors),
                                  ("reactors_only", fig.reactors_only), ("silent", fig.silent),
                                  ("first_time_contributors", fig.first_timers), ("posts", fig.posts),
                                  ("reactions", fig.reactions)):
                assert row[column] == (value if value is not None else row[column]) and (value is None) == isinstance(row[column], str), (name, column)


def test_a_report_reads_the_same_from_roll_ups_and_from_live_days(d: Driver) -> None:
    """Week 1 rolled up and week 2 live (sophie in both) against both weeks read live: the
    database's per-person grouping and the live correction class everyone alike."""
    two_weeks_in_sales(d)
    sales = Scope("channel", channel_id(d, "sales"))
    mixed = [report(d, "julien", sales, days) for days in (7, 28)]
    with d.session() as s:
        s.execute(analytics.delete(ActivityDay))
        s.execute(analytics.delete(RollupDay))
    live = [report(d, "julien", sales, days) for days in (7, 28)]
    assert live == mixed and mixed[0] is not None and mixed[0].current.contributors == 6
    assert mixed[1] is not None and (mixed[1].current.posts, mixed[1].current.replies) == (9, 2)


def test_dormant_lists_quiet_public_channels_only(d: Driver) -> None:
    post(d, "sophie", "#sales", "bonjour")
    post(d, "camille", "#direction", "privé")
    d.clock.advance(timedelta(days=45))
    post(d, "lucas", "#engineering", "still here")
    roll(d)
    out = d.say("camille", "dm", "stats dormant")
    assert keys(out) == ["stats.dormant"]
    text = everything(out)
    assert "#sales — 45 jours, dernier message : lun. 23 nov. 2026, 13 membres" in text and "#marketing" in text
    assert "engineering" not in text and "direction" not in text
    with d.session() as s:
        found = analytics.dormant_channels(s, Viewer(person_id(d, "camille"), admin=True), d.clock.now().date())
    assert found is not None and {c.name for c in found} == {"general", "sales", "marketing", "support", "ideas"}
