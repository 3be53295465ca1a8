"""The rough edges a newcomer hit in the demo (issue 14's smaller points), each played through
the bot in English and in French: a private leaderboard, one thank-you per person a day,
help for a family of commands, a role someone already has, plain names in the export, one
digest per rhythm and content, the asker never among their own experts, refusals that read
as sentences and name each person with their own role."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core import Bot
from bot.text import MARK_OPEN, ping_marker
from store import kudos as kudos_store
from store.models.contribution import Kudos
from store.models.core import Person
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def english(d: Driver, *handles: str) -> None:
    for handle in handles:
        assert keys(d.say(handle, "dm", "lang en")) == ["lang.set"]


def test_looking_at_the_leaderboard_is_a_private_answer(d: Driver) -> None:
    d.say("thomas", "#general", "thanks @lucas for the review")
    english(d, "nathan")
    for who, text, words in (("nathan", "kudos top", "Most thanked"), ("emma", "merci top mois", "Les plus remercié·es")):
        top = outbound(d.say(who, "#general", text), "kudos.top")
        assert top.private_for is not None and top.private_for.id == who and top.to.id == "general"
        assert words in everything([top]) and "Lucas Petit — 1" in everything([top])


def test_one_thank_you_per_person_a_day(d: Driver) -> None:
    d.clock.advance(timedelta(hours=6))
    assert keys(d.say("thomas", "#general", "merci @lucas pour la revue")) == ["kudos.card"]
    again = d.say("thomas", "#general", "merci @lucas @emma pour la démo")
    assert keys(again) == ["kudos.already_today"] and again[0].private_for is not None
    assert "Vous avez déjà remercié Lucas Petit aujourd'hui" in everything(again)
    english(d, "hugo")
    assert keys(d.say("hugo", "#general", "thanks @lea for the slides")) == ["kudos.card"]
    assert "You already thanked Léa Moreau today" in everything(d.say("hugo", "#general", "thanks @lea for the party"))
    assert keys(d.say("thomas", "#general", "merci @emma pour la démo")) == ["kudos.card"]  # another person: fine
    with d.session() as s:
        assert s.scalar(select(func.count(Kudos.id))) == 3  # the refused ones left nothing, not even emma's half
    d.clock.advance(timedelta(days=1))
    assert keys(d.say("thomas", "#general", "merci @lucas pour le déploiement")) == ["kudos.card"]


def test_the_store_refuses_a_second_thank_you_sent_at_the_same_time(d: Driver) -> None:
    """Two processes past the handler's check at once: the unique key keeps one."""
    now = d.clock.now()
    with d.session() as s:
        thomas, lucas = (s.scalar(select(Person.id).where(Person.handle == h)) for h in ("thomas", "lucas"))
        values = dict(giver_id=thomas, recipient_id=lucas, reason="the review", skills="", conversation_id=None,
                      weight=1.0, now=now, day=now.date())
        kudos_store.add(s, **values)  # type: ignore[arg-type]
        with pytest.raises(kudos_store.AlreadyThanked):
            kudos_store.add(s, **values)  # type: ignore[arg-type]
        assert s.scalar(select(func.count(Kudos.id))) == 1


@pytest.mark.parametrize("who, text, title, listed, absent", [
    ("thomas", "help role", "Commands for “role”", ["role list"], ["role add"]),
    ("camille", "help role", "Commands for “role”", ["role add", "role remove", "role list"], []),
    ("camille", "aide rôle", "Commandes pour « rôle »", ["rôle ajouter", "rôle retirer", "rôles"], []),
    ("thomas", "aide digest", "Commandes pour « digest »", ["digest planifier", "digest moi"], []),
    ("thomas", "help administration", "Commands for “administration”", ["role list"], ["role add"]),
])
def test_help_for_a_family_of_commands(d: Driver, who: str, text: str, title: str, listed: list[str], absent: list[str]) -> None:
    if text.startswith("help"):
        english(d, who)
    answer = d.say(who, "dm", text)
    assert keys(answer) == ["help.family"]
    shown = everything(answer)
    assert title in shown and all(f"`{c}`" in shown for c in listed) and not any(f"`{c}`" in shown for c in absent)
    assert keys(d.say(who, "dm", "help blorp")) == ["help.no_such_command"]


def test_adding_a_role_someone_already_has_says_so(d: Driver) -> None:
    already = d.say("camille", "#sales", "rôle ajouter @julien animateur #sales")
    assert keys(already) == ["roles.already_has"]
    assert "Julien Robert a déjà le rôle animateur pour" in everything(already) and "désormais" not in everything(already)
    mixed = d.say("camille", "#sales", "rôle ajouter @julien @lucas animateur #sales")
    assert keys(mixed) == ["roles.added", "roles.already_has"]
    assert "Lucas Petit fait désormais partie" in everything(mixed[:1]) and "Julien" not in everything(mixed[:1])
    english(d, "camille")
    assert "Julien Robert, Lucas Petit already have the animator role for" in everything(
        d.say("camille", "#sales", "role add @julien @lucas animator #sales"))


def test_the_export_names_people_without_markers(d: Driver) -> None:
    d.say("thomas", "#general", "Lunch with @lucas tomorrow?", addressed=False, via="message")
    d.say("thomas", "#general", "ask Can @emma review the #terraform modules?")
    for command in ("export my data", "exporter mes données"):
        exported = outbound(d.say("thomas", "dm", command), "privacy.exported").reply.attachment
        assert exported is not None
        data = json.loads(exported[1])
        assert MARK_OPEN not in json.dumps(data, ensure_ascii=False)
        assert data["messages"][0]["text"] == "Lunch with @Lucas Petit tomorrow?"
        assert data["help_requests"][0]["question"] == "Can @Emma Durand review the #terraform modules?"


def test_one_digest_per_rhythm_and_content_in_a_channel(d: Driver) -> None:
    assert keys(d.say("julien", "#sales", "digest planifier #sales tous les jours à 9h")) == ["digest.scheduled"]
    twice = d.say("julien", "#sales", "digest planifier #sales tous les jours à 10h")
    assert keys(twice) == ["digest.overlaps"]
    assert "#sales a déjà le résumé 1 avec le même contenu, tous les jours à 09:00" in everything(twice)
    assert keys(d.say("julien", "#sales", "digest planifier #sales tous les jours à 10h sources #pricing")) == ["digest.scheduled"]
    assert keys(d.say("julien", "#sales", "digest planifier #sales chaque lundi 9h")) == ["digest.scheduled"]
    english(d, "julien")
    assert "#sales already has digest 3 with the same content, every Monday at 09:00" in everything(
        d.say("julien", "#sales", "digest schedule #sales weekly monday 11:00"))
    assert keys(d.say("julien", "#sales", "digest list")) == ["digest.list"]
    assert "4 " not in everything(d.say("julien", "#sales", "digest list")).split("·")[0]


def test_who_knows_leaves_out_the_person_asking(d: Driver) -> None:
    english(d, "lucas")
    for who, text in (("thomas", "qui connaît kubernetes"), ("lucas", "who knows kubernetes")):
        found = everything(d.say(who, "#engineering", text))
        me, other = ("Thomas Thomas", "Lucas Petit") if who == "thomas" else ("Lucas Petit", "Thomas Thomas")
        assert other in found and me not in found


def test_refusals_name_the_action_the_roles_and_each_persons_role(d: Driver) -> None:
    refused = d.say("thomas", "#sales", "digest planifier #sales chaque lundi 9h")
    assert keys(refused) == ["error.not_allowed"]
    assert everything(refused) == ("Seuls les animateurs ou admins peuvent planifier un résumé dans ce canal. "
                                   "Demandez à : Julien Robert (animateur), camille (admin).")
    english(d, "thomas")
    idea = d.say("lea", "#sales", "idea A shared #pricing grid")
    assert "idea.card" in keys(idea)
    status = everything(d.say("thomas", "#sales", "idea status 1 accepted"))
    assert status == "Only référents, animators, or admins can change an idea's status. Ask: camille (admin)."


def test_an_escalation_names_animators_as_animators(d: Driver) -> None:
    assert keys(d.say("camille", "#sales", "rôle retirer @sophie référent #sales")) == ["roles.removed"]
    d.say("thomas", "#sales", "ask Multi-year #pricing grid for Airbus?")
    d.clock.advance(timedelta(hours=4, minutes=5))
    post = outbound(d.job("help.escalate"), "help_requests.escalated")
    assert post.to.id == "sales"  # a French channel
    assert f"Nous sollicitons : {ping_marker('julien')} (animateur)." in post.reply.text
    assert "Référents" not in post.reply.text
