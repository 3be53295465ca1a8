"""Declarations normalised (an alias is stored as its topic, a near-duplicate joins the skill
already declared), better "nobody" answers (closest topics, a help-request button that files
one request) and the asker never listed as their own expert — on the demo organisation, as
people would type it."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.core import Bot
from bot.types import Outbound
from store.models.contribution import HelpRequest
from store.models.core import Person, PersonSkill, Skill
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def declared(d: Driver, handle: str) -> list[str]:
    with d.session() as s:
        return sorted(s.scalars(select(Skill.name).join(PersonSkill, PersonSkill.skill_id == Skill.id)
                                .join(Person, Person.id == PersonSkill.person_id).where(Person.handle == handle)))


def skill_names(d: Driver) -> set[str]:
    with d.session() as s:
        return set(s.scalars(select(Skill.name)))


def card_actions(effects: list) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(a.label, a.command) for e in effects if isinstance(e, Outbound) and e.reply.card
            for a in e.reply.card.actions]


def test_an_alias_is_declared_as_its_canonical_topic(d: Driver) -> None:
    out = d.say("thomas", "dm", "lang en") and d.say("thomas", "dm", "skills add AO")
    assert keys(out) == ["skills.added", "skills.normalised"]
    assert "appel d'offres" in outbound(out, "skills.added").reply.text
    assert "AO → appel d'offres" in everything(out) and "skills add =AO" in everything(out)
    assert "appel d'offres" in declared(d, "thomas") and "AO" not in skill_names(d)
    # Found by the other words of the concept, and listed under its canonical name.
    found = d.say("lucas", "dm", "who knows tender")
    assert "Thomas" in everything(found) and "appel d'offres" in everything(found)


def test_an_admin_alias_names_the_topic_to_store(d: Driver) -> None:
    assert keys(d.say("camille", "dm", "alias add gestion projet = project management")) == ["expert.alias.added"]
    out = d.say("hugo", "dm", "skills add gestion projet")
    assert keys(out) == ["skills.added", "skills.normalised"]
    assert declared(d, "hugo")[-1:] == ["project management"] or "project management" in declared(d, "hugo")


def test_a_near_duplicate_joins_the_skill_already_declared_and_says_so(d: Driver) -> None:
    d.say("emma", "dm", "lang en")
    assert keys(d.say("emma", "dm", "skills add project management")) == ["skills.added"]
    d.say("lucas", "dm", "lang en")
    out = d.say("lucas", "dm", "skills add project managment, Kubernetes operators")
    assert keys(out) == ["skills.added", "skills.normalised"]
    note = outbound(out, "skills.normalised").reply.text
    assert "project managment → project management" in note and "one topic for both" in note
    assert "project management" in declared(d, "lucas") and "project managment" not in skill_names(d)
    assert "Kubernetes operators" in declared(d, "lucas")  # not a near-duplicate of anything
    # One topic: both declarers come back for either spelling.
    found = everything(d.say("thomas", "dm", "who knows project management"))
    assert "Emma" in found and "Lucas" in found


def test_keeping_ones_own_spelling_and_what_is_never_attached(d: Driver) -> None:
    d.say("emma", "dm", "skills add project management, SQL Server 2016")
    out = d.say("lucas", "dm", "skills add =project managment")
    assert keys(out) == ["skills.added"]
    assert "project managment" in declared(d, "lucas")
    # Another version number is another skill; a short word is never guessed.
    assert keys(d.say("hugo", "dm", "skills add SQL Server 2019, javaa")) == ["skills.added"]
    assert {"SQL Server 2019", "javaa"} <= set(declared(d, "hugo"))


def test_french_declarer_reads_the_note_in_french(d: Driver) -> None:
    out = d.say("sophie", "dm", "compétences ajouter AO")  # sophie's locale is French
    assert keys(out) == ["skills.added", "skills.normalised"]
    assert "AO → appel d'offres (un synonyme)" in everything(out) and "compétences ajouter =AO" in everything(out)


def test_nobody_answer_suggests_topics_and_files_one_help_request(d: Driver) -> None:
    d.say("emma", "dm", "skills add zorblax tuning")
    d.say("nathan", "dm", "lang en")
    out = d.say("nathan", "#general", "who knows zorbl")
    assert keys(out) == ["expert.none"]
    assert "zorblax tuning" in everything(out)  # a close topic, offered with a button
    actions = card_actions(out)
    assert actions[0] == ("Post it as a help request", "ask who knows zorbl")
    assert ("Who knows zorblax tuning?", "who knows zorblax tuning") in actions[1:]
    filed = d.say("nathan", "#general", actions[0][1], via="button")
    assert "help_requests.card" in keys(filed)
    card = outbound(filed, "help_requests.card")
    assert "Who knows zorbl?" in everything([card])
    # Pressed again (a double click, a retry): still one request, and the asker is told which.
    again = d.say("nathan", "#general", actions[0][1], via="button")
    assert keys(again) == ["expert.ask_already"] and "#1" in everything(again)
    with d.session() as s:
        assert s.scalar(select(func.count(HelpRequest.id))) == 1


def test_nobody_answer_in_french_and_without_any_close_topic(d: Driver) -> None:
    out = d.say("sophie", "dm", "qui connaît xyzzyqwv")
    assert keys(out) in (["expert.none"], ["expert.none_no_suggestion"])
    assert card_actions(out)[0] == ("La publier comme demande d'aide", "demande qui connaît xyzzyqwv")
    filed = d.say("sophie", "dm", "demande qui connaît xyzzyqwv", via="button")
    assert "Qui connaît xyzzyqwv ?" in everything(filed)


def test_the_asker_is_not_their_own_expert(d: Driver) -> None:
    d.say("hugo", "dm", "lang en")
    d.say("hugo", "dm", "skills add origami")
    out = d.say("hugo", "dm", "who knows origami")
    assert keys(out) == ["expert.none"] or keys(out) == ["expert.none_no_suggestion"]
    assert "You declared origami yourself" in everything(out)
    d.say("emma", "dm", "skills add origami")
    found = d.say("hugo", "dm", "who knows origami")
    assert keys(found) == ["expert.results"]
    lines = found[0].reply.card.sections[0][1]
    assert "Emma" in lines and "Hugo" not in lines
    # Someone else asking sees both.
    both = d.say("lucas", "dm", "who knows origami")[0].reply.card.sections[0][1]
    assert "Emma" in both and "Hugo" in both


def test_a_synonym_group_keeps_the_topic_people_already_chose(d: Driver) -> None:
    # Nobody declared artificial intelligence / intelligence artificielle / AI / IA yet: a full
    # name stays as typed (an English speaker is not handed the French label) …
    d.say("emma", "dm", "lang en")
    assert keys(d.say("emma", "dm", "skills add artificial intelligence")) == ["skills.added"]
    # … and from then on the group's other names join it, short forms and translations alike.
    out = d.say("sophie", "dm", "compétences ajouter IA, intelligence artificielle")
    assert keys(out) == ["skills.added", "skills.normalised"]
    assert "IA → artificial intelligence" in everything(out)
    assert "intelligence artificielle → artificial intelligence" in everything(out)
    assert "artificial intelligence" in declared(d, "sophie")
    # A short form nobody declared under any name is stored as the group's first term.
    assert "typescript" in everything(d.say("hugo", "dm", "skills add ts"))
    assert "typescript" in declared(d, "hugo")
