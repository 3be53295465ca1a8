"""profile, profile set, skills, and the membership hooks that keep people up to date."""
from __future__ import annotations

from sqlalchemy import select

from bot.core import Bot
from bot.types import ConversationRef, MembersChanged, ProfileUpdate, UserRef
from store import expertise as xstore
from store.models.core import Conversation, ConversationMember, Person, PersonSkill, Skill
from tests.test_expertise import PLATFORM, TENANT, keys, make_person, say


def person(bot: Bot, handle: str) -> Person:
    with bot.services.db.session(TENANT) as s:
        found = s.scalar(select(Person).where(Person.external_id == handle))
        assert found is not None
        return found


def skill_names(bot: Bot, handle: str) -> set[str]:
    with bot.services.db.session(TENANT) as s:
        return set(s.scalars(select(Skill.name).join(PersonSkill, PersonSkill.skill_id == Skill.id)
                             .join(Person, Person.id == PersonSkill.person_id).where(Person.external_id == handle)))


def test_profile_card_shows_fields_and_skills_with_source_and_date(bot: Bot) -> None:
    make_person(bot, "ana", ("kubernetes",), days_ago=400, title="SRE", department="Engineering", site="Lyon",
                tz="Europe/Paris", languages="fr, en")
    make_person(bot, "bob")
    out = say(bot, "bob", "general", "profile @ana")
    assert keys(out) == ["profile.card"]
    card = out[0].reply.card
    fields = dict(card.fields)
    assert fields["Title"] == "SRE" and fields["Site"] == "Lyon" and fields["Time zone"] == "Europe/Paris"
    assert fields["Languages"] == "fr, en" and fields["Department"] == "Engineering"
    assert "kubernetes — declared, last confirmed 13 months ago (may be out of date)" in card.sections[0][1]
    mine = say(bot, "bob", "general", "profile")[0].reply.card
    assert "skills add" in mine.sections[0][1] and "profile set" in mine.footer


def test_profile_by_name_unknown_person_and_french(bot: Bot) -> None:
    make_person(bot, "ana", ("python",))
    make_person(bot, "bob")
    assert keys(say(bot, "bob", "general", "profile Ana")) == ["profile.card"]
    assert keys(say(bot, "bob", "general", "profile @nobody")) == ["profile.unknown_person"]
    say(bot, "bob", "general", "lang fr")
    out = say(bot, "bob", "general", "profil @ana")
    assert keys(out) == ["profile.card"] and dict(out[0].reply.card.fields)["Poste"] == "—"
    assert "python — déclarée, confirmée aujourd'hui" in out[0].reply.card.sections[0][1]


def test_profile_set_fields_with_validation(bot: Bot) -> None:
    make_person(bot, "ana")
    assert keys(say(bot, "ana", "general", "profile set title Head of Pricing")) == ["profile.set.done"]
    assert keys(say(bot, "ana", "general", "profile set tz america/montreal")) == ["profile.set.done"]
    assert keys(say(bot, "ana", "general", "profile set tz Mars/Olympus")) == ["profile.set.bad_tz"]
    assert keys(say(bot, "ana", "general", "profile set languages fr,  en, fr")) == ["profile.set.done"]
    assert keys(say(bot, "ana", "general", "profile set site " + "x" * 101)) == ["profile.set.too_long"]
    assert keys(say(bot, "ana", "general", "profile set shoe size 42")) == ["profile.set.unknown_field"]
    assert keys(say(bot, "ana", "general", "profile set mentions maybe")) == ["profile.set.bad_mentions"]
    assert keys(say(bot, "ana", "general", "profile set mentions off")) == ["profile.set.mentions_off"]
    assert keys(say(bot, "ana", "general", "profile set")) == ["error.missing_argument"]
    ana = person(bot, "ana")
    assert (ana.title, ana.tz, ana.languages, ana.site, ana.accepts_mentions) == (
        "Head of Pricing", "America/Montreal", "fr, en", "", False)
    say(bot, "ana", "general", "lang fr")
    assert keys(say(bot, "ana", "general", "profil modifier service Ventes")) == ["profile.set.done"]
    assert keys(say(bot, "ana", "general", "profil modifier mentions oui")) == ["profile.set.mentions_on"]
    ana = person(bot, "ana")
    assert ana.department == "Ventes" and ana.accepts_mentions


def test_skills_add_remove_list_and_french_aliases(bot: Bot) -> None:
    make_person(bot, "ana")
    assert keys(say(bot, "ana", "general", "skills")) == ["skills.none"]
    assert keys(say(bot, "ana", "general", "skills add kubernetes, appel d'offres ; Kubernetes")) == ["skills.added"]
    assert skill_names(bot, "ana") == {"kubernetes", "appel d'offres"}
    assert keys(say(bot, "ana", "general", "skills add kubernetes, rust")) == ["skills.added_and_confirmed"]
    assert keys(say(bot, "ana", "general", "skills add RUST")) == ["skills.confirmed"]
    out = say(bot, "ana", "general", "skills")
    assert keys(out) == ["skills.list"] and out[0].reply.params["count"] == 3
    assert keys(say(bot, "ana", "general", "skills remove rust, cobol")) == ["skills.removed_some"]
    assert keys(say(bot, "ana", "general", "skills remove cobol")) == ["skills.not_declared"]
    say(bot, "ana", "general", "lang fr")
    assert keys(say(bot, "ana", "general", "compétences ajouter négociation")) == ["skills.added"]
    assert keys(say(bot, "ana", "general", "competences retirer negociation")) == ["skills.removed"]
    assert keys(say(bot, "ana", "general", "compétences")) == ["skills.list"]
    assert skill_names(bot, "ana") == {"kubernetes", "appel d'offres"}


def test_skills_bad_input_writes_nothing(bot: Bot) -> None:
    make_person(bot, "ana")
    many = ", ".join(f"skill{i}" for i in range(21))
    assert keys(say(bot, "ana", "general", f"skills add {many}")) == ["skills.too_many"]
    assert keys(say(bot, "ana", "general", "skills add python, " + "y" * 81)) == ["skills.too_long"]
    assert keys(say(bot, "ana", "general", "skills add python, ' ; --")) == ["skills.bad_name"]
    assert keys(say(bot, "ana", "general", "skills add , ,")) == ["skills.empty"]
    assert keys(say(bot, "ana", "general", "skills add")) == ["error.missing_argument"]
    assert skill_names(bot, "ana") == set()
    assert keys(say(bot, "ana", "general", "skills add python'); DROP TABLE skills")) == ["skills.added"]
    assert skill_names(bot, "ana") == {"python')", "DROP TABLE skills"}


def test_profile_update_hook(bot: Bot) -> None:
    make_person(bot, "ana")
    bot.handle(ProfileUpdate(user=UserRef(PLATFORM, TENANT, "ana"), real_name="Ana Lima", title="CTO", email="ana@x.org",
                             tz="Europe/Lisbon", avatar_url="https://x/a.png", locale="fr-FR"))
    ana = person(bot, "ana")
    assert (ana.display_name, ana.title, ana.email, ana.tz, ana.locale) == ("Ana Lima", "CTO", "ana@x.org", "Europe/Lisbon", "fr")
    bot.handle(ProfileUpdate(user=UserRef(PLATFORM, TENANT, "ana"), tz="Not/AZone", deactivated=True))
    ana = person(bot, "ana")
    assert ana.tz == "Europe/Lisbon" and not ana.active


def test_members_changed_hook(bot: Bot) -> None:
    make_person(bot, "ana")
    make_person(bot, "bob")
    conv = ConversationRef(PLATFORM, TENANT, "secret", "private", name="secret")
    bot.handle(MembersChanged(conversation=conv, joined=(UserRef(PLATFORM, TENANT, "ana"), UserRef(PLATFORM, TENANT, "bob")),
                              bot_joined=True))

    def members() -> set[str]:
        with bot.services.db.session(TENANT) as s:
            return set(s.scalars(select(Person.external_id).join(ConversationMember, ConversationMember.person_id == Person.id)
                                 .join(Conversation, Conversation.id == ConversationMember.conversation_id)
                                 .where(Conversation.external_id == "secret")))

    assert members() == {"ana", "bob"}
    bot.handle(MembersChanged(conversation=conv, left=(UserRef(PLATFORM, TENANT, "bob"),), bot_left=True))
    assert members() == {"ana"}
    with bot.services.db.session(TENANT) as s:
        row = s.scalar(select(Conversation).where(Conversation.external_id == "secret"))
        assert row is not None and not row.bot_member and row.member_count == 1


def test_profile_evidence_only_from_readable_conversations(bot: Bot) -> None:
    ana = make_person(bot, "ana")
    make_person(bot, "bob")
    say(bot, "ana", "secret", "help", kind="private")  # ana is in #secret, bob is not
    say(bot, "ana", "general", "help")
    with bot.services.db.session(TENANT) as s:
        convs = {c.external_id: c.id for c in s.scalars(select(Conversation))}
        now = bot.services.clock.now()
        xstore.add_evidence(s, TENANT, ana, "#réorganisation", "hashtag", now, source_ref="s1", conversation_id=convs["secret"])
        xstore.add_evidence(s, TENANT, ana, "#pricing", "help", now, source_ref="g1", conversation_id=convs["general"])
    seen_by_bob = say(bot, "bob", "general", "profile @ana")[0].reply.card
    assert "pricing — helped ×1" in seen_by_bob.sections[-1][1] and "réorganisation" not in str(seen_by_bob)
    seen_by_ana = say(bot, "ana", "general", "profile")[0].reply.card
    assert "réorganisation — hashtag ×1" in seen_by_ana.sections[-1][1]
