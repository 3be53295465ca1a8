"""`forget me` and adoption analytics: the organisation's counts stay, but nothing is left under
the forgotten person's id, which SQLite may give to the next newcomer (who must start from zero)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.core import Bot
from store.models.analytics import ActivityDay, FirstContribution
from store.analytics import Scope
from tests.test_ideas_support import Driver, keys
from tests.test_stats import channel_id, person_id, post, report, roll


def test_forgotten_activity_keeps_the_counts_under_no_persons_id(bot: Bot) -> None:
    d = Driver(bot)
    for who in ("sophie", "chloe", "nathan", "sarah", "james", "thomas"):
        post(d, who, "#sales", "bonjour")
    d.clock.advance(timedelta(days=1))
    roll(d)
    thomas = person_id(d, "thomas")
    assert keys(d.say("thomas", "dm", "forget me confirm")) == ["privacy.forgotten"]
    with d.session() as s:
        for model in (ActivityDay, FirstContribution):
            assert s.scalar(select(func.count()).select_from(model).where(model.person_id == thomas)) == 0
        assert s.scalar(select(func.count()).select_from(ActivityDay).where(ActivityDay.person_id < 0)) == 1
    r = report(d, "julien", Scope("channel", channel_id(d, "sales")), days=7)
    assert r is not None and r.current.contributors == 6 and r.current.posts == 6
    # the newcomer who comes back under the same handle starts from nothing
    out = d.say("thomas", "dm", "stats me")
    assert keys(out) == ["stats.me_nothing"]
