"""`audit`: admins read every decision (role changes, access decisions, suggestion outcomes,
anonymous-author look-ups, privacy switches), filtered by kind and period, as CSV too;
référents read what concerns the suggestions and requests routed to them; others nothing."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core import Bot
from store.models.core import Person
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def decisions(d: Driver) -> None:
    d.say("camille", "#general", "role add @emma animator #marketing")
    d.say("thomas", "#sales", "suggest Pin the price list")                 # to sophie (#sales référent)
    d.say("sophie", "dm", "suggestion decline 1 Already in the wiki")
    d.say("lucas", "dm", "suggest anon Fewer meetings")                     # to the admins
    d.say("camille", "dm", "suggestion author 2")
    d.say("emma", "dm", "request access #sales")                            # to julien and sophie
    d.say("julien", "dm", "request approve 1")
    d.say("lucas", "dm", "request access #direction")                       # to the admins
    d.say("camille", "dm", "request decline 2 Board only")
    d.say("julien", "#sales", "privacy channel off #sales")


def test_admin_lists_each_decision_filters_and_exports(d: Driver) -> None:
    decisions(d)
    d.say("camille", "#general", "role remove @emma animator #marketing")
    d.say("thomas", "#sales", "suggest Archive the 2024 tenders")          # #3 to sophie
    d.say("sophie", "dm", "suggestion answer 3 Done this week")
    d.say("sophie", "dm", "suggestion done 3")
    everything_ = everything(d.say("camille", "dm", "audit"))
    for action in ("role.add", "role.remove", "suggestion.declined", "suggestion.answered", "suggestion.done",
                   "suggestion.author_revealed", "request.approved", "request.declined", "privacy.channel"):
        assert action in everything_, action
    roles = everything(d.say("camille", "dm", "audit roles"))
    assert "role.add" in roles and "request." not in roles
    anonymous = everything(d.say("camille", "dm", "journal anonymes 7 jours"))
    assert "suggestion.author_revealed" in anonymous and "role.add" not in anonymous
    assert keys(d.say("camille", "dm", "audit access")) == ["audit.list"]
    assert keys(d.say("camille", "dm", "audit sometimes")) == ["audit.bad_filter"]
    assert keys(d.say("camille", "dm", "audit 200 weeks")) == ["audit.period_too_long"]
    d.clock.advance(timedelta(days=10))
    assert keys(d.say("camille", "dm", "audit roles 7 days")) == ["audit.empty"]
    assert keys(d.say("camille", "dm", "audit roles month")) == ["audit.list"]
    exported = outbound(d.say("camille", "dm", "audit export access month"), "audit.exported")
    assert exported.reply.attachment is not None
    rows = list(csv.reader(io.StringIO(exported.reply.attachment[1].decode("utf-8"))))
    assert rows[0] == ["when_utc", "who", "action", "detail"]
    assert sorted(r[2] for r in rows[1:]) == ["request.approved", "request.declined"]
    assert {r[1] for r in rows[1:]} == {"Julien Robert", "Camille Bernard"}


def test_referents_see_their_scope_and_others_nothing(d: Driver) -> None:
    decisions(d)
    sophie = everything(d.say("sophie", "dm", "audit"))  # référent of #sales: suggestion 1 and request 1 were hers
    assert "suggestion.declined" in sophie and "request.approved" in sophie
    assert "request.declined" not in sophie and "author_revealed" not in sophie and "role.add" not in sophie
    assert keys(d.say("thomas", "dm", "audit")) == ["error.not_allowed"]
    assert keys(d.say("thomas", "dm", "audit export")) == ["error.not_allowed"]


def test_csv_cells_never_run_as_formulas(d: Driver) -> None:
    with d.session() as s:
        s.scalar(select(Person).where(Person.handle == "camille")).display_name = "=SUM(A1:A9)"
    d.say("camille", "#general", "role add @emma animator #marketing")
    exported = outbound(d.say("camille", "dm", "audit export"), "audit.exported")
    rows = list(csv.reader(io.StringIO(exported.reply.attachment[1].decode("utf-8"))))  # type: ignore[index]
    assert ["'=SUM(A1:A9)", "role.add"] == rows[1][1:3]
