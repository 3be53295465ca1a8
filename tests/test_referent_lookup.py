"""`referent` (`référent`): anyone reads who their référents are — the channel's (and its
animators), their department's and site's from their profile, everyone's — and where a
suggestion from there goes; a clear answer when there are none or the profile has no
department; a private channel's référents only for its members. And a role for a department
or site that does not exist gets the closest one as a suggestion, and no role."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.core import Bot
from store.models.core import Person, Role
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def fields(effects: list[object], key: str) -> dict[str, str]:
    card = outbound(effects, key).reply.card  # type: ignore[arg-type]
    assert card is not None
    return dict(card.fields)


def test_a_salesperson_reads_the_channel_department_site_and_everyone(d: Driver) -> None:
    # james: Sales, Paris, reads English; #sales has sophie (référent) and julien (animator).
    assert keys(d.say("camille", "dm", "role add @alice referent department Sales")) == ["roles.added"]
    assert keys(d.say("camille", "dm", "rôle ajouter @emma référent site Paris")) == ["roles.added"]
    assert keys(d.say("camille", "dm", "role add @hugo referent")) == ["roles.added"]
    assert keys(d.say("camille", "dm", "role add @lucas referent department Engineering")) == ["roles.added"]
    out = d.say("james", "#sales", "referent")
    assert keys(out) == ["referents.yours"] and outbound(out, "referents.yours").private_for is not None
    assert fields(out, "referents.yours") == {
        "Référents of #sales": "Sophie Martin", "Animators of #sales": "Julien Robert",
        "Référents of the Sales department": "Alice Dubois", "Référents of the Paris site": "Emma Durand",
        "Référents for everyone": "Hugo Leroy"}
    assert "Lucas" not in everything(out)  # another department's référent is not james's
    assert "goes to Sophie Martin" in outbound(out, "referents.yours").reply.card.footer  # type: ignore[union-attr]
    # In a DM: no channel; a suggestion from there goes to the department's référent.
    out = d.say("james", "dm", "referents")
    assert "Référents of #sales" not in fields(out, "referents.yours")
    assert "goes to Alice Dubois" in everything(out)
    # Another channel by name, and in French for a French reader.
    out = d.say("thomas", "dm", "référent #sales")  # thomas: Support, Lyon
    assert fields(out, "referents.yours") == {
        "Référents de #sales": "Sophie Martin", "Animateurs de #sales": "Julien Robert",
        "Référents du service Support": "personne pour l'instant", "Référents du site Lyon": "personne pour l'instant",
        "Référents pour tout le monde": "Hugo Leroy"}


def test_nobody_yet_says_where_suggestions_go_and_a_missing_department_says_how_to_set_it(d: Driver) -> None:
    out = d.say("james", "dm", "referent")
    assert keys(out) == ["referents.none"] and "admins: Camille Bernard" in everything(out)
    assert set(fields(out, "referents.none").values()) == {"nobody yet"}
    with d.session() as s:
        s.scalar(select(Person).where(Person.handle == "james")).department = ""
        s.scalar(select(Person).where(Person.handle == "thomas")).department = ""
    out = d.say("james", "dm", "referent")
    assert keys(out) == ["referents.none_no_profile"]
    assert "profile set department" in fields(out, "referents.none_no_profile")["Your department"]
    out = d.say("thomas", "dm", "référent")  # French
    assert keys(out) == ["referents.none_no_profile"] and "profil modifier service" in everything(out)
    # with a référent somewhere: the list, and still the hint
    d.say("camille", "dm", "role add @emma referent site Paris")
    out = d.say("james", "#sales", "referent")
    assert keys(out) == ["referents.yours_no_profile"]
    found = fields(out, "referents.yours_no_profile")
    assert found["Référents of #sales"] == "Sophie Martin" and found["Référents of the Paris site"] == "Emma Durand"
    assert "profile set department" in found["Your department"]


def test_a_private_channels_referents_only_for_its_members(d: Driver) -> None:
    assert keys(d.say("camille", "dm", "role add @julien referent #direction")) == ["roles.added"]
    outsider = d.say("lucas", "dm", "referent #direction")  # lucas is not in #direction
    assert keys(outsider) == ["error.unknown_channel"] and "Julien" not in everything(outsider)
    assert keys(d.say("lucas", "dm", "referent #nowhere")) == keys(outsider)  # same as a channel that does not exist
    member = d.say("thomas", "dm", "referent #direction")
    assert fields(member, "referents.yours")["Référents de #direction"] == "Julien Robert"
    assert keys(d.say("camille", "dm", "referent #direction")) == ["referents.yours"]


def test_bad_input(d: Driver) -> None:
    out = d.say("james", "dm", "referent Sales")
    assert keys(out) == ["referents.bad_args"] and "referent [#channel]" in everything(out)


def test_a_role_for_a_department_or_site_that_does_not_exist_gets_the_closest(d: Driver) -> None:
    out = d.say("camille", "dm", "role add @alice referent department Sals")
    assert keys(out) == ["stats.unknown_scope_suggest"] and "« Sales »" in everything(out)  # camille reads French
    out = d.say("camille", "dm", "rôle ajouter @alice référent service Markting")
    assert keys(out) == ["stats.unknown_scope_suggest"] and "Marketing" in everything(out)
    out = d.say("camille", "dm", "role add @alice referent site Montreal")
    assert keys(out) == ["stats.unknown_scope_suggest"] and "« Montréal »" in everything(out)
    assert keys(d.say("camille", "dm", "role add @alice referent site montréal")) == ["roles.added"]  # any case
    assert keys(d.say("camille", "dm", "role add @alice referent department Qwxzy")) == ["stats.unknown_scope"]
    assert keys(d.say("camille", "dm", "role add @alice referent department")) == ["stats.role_scope_missing"]
    with d.session() as s:
        rows = list(s.execute(select(Role.scope_kind, Role.scope_value).join(Person, Person.id == Role.person_id)
                              .where(Person.handle == "alice")))
    assert [tuple(r) for r in rows] == [("site", "Montréal")]
