"""Expertise lookup: typos, accents, word order, aliases, ranking, privacy, freshness,
deactivated people, incremental index updates and the commands around them."""
from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Iterator

import pytest
from sqlalchemy import select

from bot.clock import FixedClock
from bot.context import Ctx, Services
from bot.core import Bot
from handlers.expertise.lookup import find_experts, index_for, topics_in
from handlers.expertise.evidence import EvidenceBook
from bot.types import ConversationRef, IncomingMessage, Outbound, ProfileUpdate, UserRef
from handlers import build_registry
from store import expertise as xstore
from store.db import Database
from store.models.core import Conversation, Person, Workspace
from tests.harness import driver

TENANT = "T1"
PLATFORM = "test"


# An addressed message from `user` in channel `where` (or a DM with where="dm"), typed as is.
say = partial(driver.say, tenant=TENANT, platform=PLATFORM, kind="public", via="message", mark_mentions=False)


def keys(outs: list[Outbound]) -> list[str]:
    return [o.reply.key for o in outs]


def make_person(bot: Bot, handle: str, skills: tuple[str, ...] = (), *, days_ago: int = 0, **fields: object) -> int:
    """Create someone (through the bot, as the platform would) and declare skills at a date."""
    say(bot, handle, "dm", "help")
    with bot.services.db.session(TENANT) as s:
        person = s.scalar(select(Person).where(Person.external_id == handle))
        assert person is not None
        person.display_name = handle.title()
        for name, value in fields.items():
            setattr(person, name, value)
        if skills:
            xstore.add_skills(s, TENANT, person, skills, bot.services.clock.now() - timedelta(days=days_ago))
        return person.id


@pytest.fixture
def session_ctx(bot: Bot) -> Iterator[callable]:
    """Build a handler-style context for `handle` on a fresh session (closed afterwards)."""
    opened = []

    def make(handle: str) -> Ctx:
        session = bot.services.db.new_session(TENANT)
        opened.append(session)
        workspace = session.get(Workspace, TENANT)
        actor = session.scalar(select(Person).where(Person.external_id == handle))
        return Ctx.for_person(bot.services, session, workspace, actor)  # type: ignore[arg-type]

    yield make
    for s in opened:
        s.rollback()
        s.close()


def names(candidates) -> list[str]:  # noqa: ANN001
    return [c.person.external_id for c in candidates]


@pytest.fixture
def org(bot: Bot) -> dict[str, int]:
    ids = {
        "asker": make_person(bot, "asker"),
        "kate": make_person(bot, "kate", ("kubernetes", "python"), days_ago=10),
        "karl": make_person(bot, "karl", ("k8s",), days_ago=20),
        "kevin": make_person(bot, "kevin", ("kubernetes",), days_ago=400),
        "nina": make_person(bot, "nina", ("négociation", "appel d'offres"), days_ago=5),
        "tom": make_person(bot, "tom", ("tender",), days_ago=5),
        "mia": make_person(bot, "mia", ("machine learning",), days_ago=5),
        "olga": make_person(bot, "olga", ("kubernetes operators",), days_ago=5),
    }
    return ids


def test_typo_gives_close_matches_only(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), "kubernets")
    assert result.exact == ()
    assert set(names(result.close)) >= {"kate", "kevin", "karl"}
    assert all("kubernetes" in c.matched or "k8s" in c.matched for c in result.close)


def test_exact_and_alias_matches_rank_above_close_ones(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), "Kubernetes")
    assert set(names(result.exact)) == {"kate", "karl", "kevin"}
    assert all(c.exact for c in result.exact) and not any(c.exact for c in result.close)
    assert "olga" in names(result.close)  # "kubernetes operators" is only close
    # freshness: confirmed 10 and 20 days ago beat 400 days ago
    assert names(result.exact)[-1] == "kevin"
    assert any("may be out of date" in why for why in result.exact[-1].why)


@pytest.mark.parametrize("query, who", [
    ("negociation", "nina"),          # accents
    ("NÉGOCIATION", "nina"),          # case
    ("k8s", "kate"),                  # alias to kubernetes
    ("kubernetes", "karl"),           # and back: karl declared k8s
    ("AO", "nina"),                   # AO -> appel d'offres
    ("RFP", "tom"),                   # RFP -> tender
    ("appel d'offres", "tom"),        # appel d'offres <-> tender
    ("appel doffres", "nina"),        # punctuation
    ("learning machine", "mia"),      # word order
])
def test_exact_matches(bot: Bot, org: dict[str, int], session_ctx, query: str, who: str) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), query)
    assert who in names(result.exact), (query, result)


@pytest.mark.parametrize("query, who", [("apel d'ofres", "nina"), ("machin lerning", "mia"), ("negotiaton", "nina")])
def test_close_matches_for_multi_word_typos(bot: Bot, org: dict[str, int], session_ctx, query: str, who: str) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), query)
    assert who in names(result.candidates), (query, result)


def test_no_result_suggests_topics(bot: Bot, org: dict[str, int]) -> None:
    out = say(bot, "asker", "general", "who knows quantum basket weaving")
    assert keys(out) == ["expert.none"]
    assert "skills add" in out[0].reply.text
    out = say(bot, "asker", "general", "who knows kubernetis")
    assert keys(out) == ["expert.results"]
    assert "Kate" in out[0].reply.card.sections[0][1]


def test_who_knows_reply_has_profile_buttons_and_french(bot: Bot, org: dict[str, int]) -> None:
    out = say(bot, "asker", "general", "who knows about kubernetes?")
    card = out[0].reply.card
    assert card is not None and out[0].reply.private
    assert [a.command for a in card.actions][:1] == ["profile @kate"]
    say(bot, "asker", "general", "lang fr")
    out = say(bot, "asker", "general", "qui connait la négociation")
    assert keys(out) == ["expert.results"]
    assert "Qui connaît" in out[0].reply.card.title and "Nina" in out[0].reply.card.sections[0][1]
    assert keys(say(bot, "asker", "general", "qui connaît")) == ["error.missing_argument"]


def test_deactivated_people_and_bots_never_appear(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    assert "kate" in names(find_experts(session_ctx("asker"), "python").exact)
    bot.handle(ProfileUpdate(user=UserRef(PLATFORM, TENANT, "kate"), deactivated=True))
    assert "kate" not in names(find_experts(session_ctx("asker"), "kubernetes").candidates)
    make_person(bot, "robot", ("kubernetes",), is_bot=True)
    assert "robot" not in names(find_experts(session_ctx("asker"), "kubernetes").candidates)
    bot.handle(ProfileUpdate(user=UserRef(PLATFORM, TENANT, "kate"), deactivated=False))
    assert "kate" in names(find_experts(session_ctx("asker"), "kubernetes").exact)


def test_evidence_ranks_and_explains_but_respects_privacy(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    now = bot.services.clock.now()
    say(bot, "kevin", "secret", "help", kind="private")  # kevin is a member of #secret, asker is not
    say(bot, "karl", "general", "help")
    with bot.services.db.session(TENANT) as s:
        secret = s.scalar(select(Conversation).where(Conversation.external_id == "secret"))
        general = s.scalar(select(Conversation).where(Conversation.external_id == "general"))
        for i in range(3):
            xstore.add_evidence(s, TENANT, org["kevin"], "#kubernetes", "help", now - timedelta(days=i), source_ref=f"h{i}",
                                conversation_id=secret.id)
        xstore.add_evidence(s, TENANT, org["karl"], "kubernetes", "kudos", now - timedelta(days=3), source_ref="k1",
                            conversation_id=general.id)
    outsider = find_experts(session_ctx("asker"), "kubernetes")
    assert names(outsider.exact)[-1] == "kevin"  # private help does not count for someone outside #secret
    assert not any("helped" in w for c in outsider.exact for w in c.why)
    karl = next(c for c in outsider.exact if c.person.external_id == "karl")
    assert any("kudos" in w for w in karl.why)
    member = find_experts(session_ctx("kevin"), "kubernetes")
    assert names(member.exact)[0] == "kevin"
    assert any("helped on kubernetes 3×" in w for w in member.exact[0].why)


def test_exclude_offset_and_limit(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    ctx = session_ctx("asker")
    everyone = names(find_experts(ctx, "kubernetes", limit=10).candidates)
    assert names(find_experts(ctx, "kubernetes", limit=2).candidates) == everyone[:2]
    assert names(find_experts(ctx, "kubernetes", limit=2, offset=1).candidates) == everyone[1:3]
    assert everyone[0] not in names(find_experts(ctx, "kubernetes", exclude=[org[everyone[0]]]).candidates)


def test_topics_in_free_text(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    found = topics_in(session_ctx("asker"), "Who can help with our k8s cluster and the Appel d'Offres for Airbus? #python")
    assert {"kubernetes", "appel d'offres", "python"} <= set(found)
    assert topics_in(session_ctx("asker"), "nothing relevant here") == []


def test_the_writing_process_updates_its_index_in_place(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    index = index_for(session_ctx("asker"))
    before = index.version
    assert keys(say(bot, "asker", "general", "skills add rust, kubernetes")) == ["skills.added"]
    ctx = session_ctx("tom")
    assert index_for(ctx) is index and index.version == before + 1
    assert "asker" in names(find_experts(ctx, "rust").exact)
    assert keys(say(bot, "asker", "general", "skills remove rust")) == ["skills.removed"]
    assert index_for(session_ctx("tom")) is index
    assert find_experts(session_ctx("tom"), "rust").candidates == ()


def test_another_process_sees_changes_through_the_version(bot: Bot, org: dict[str, int], services: Services, session_ctx) -> None:  # noqa: ANN001
    find_experts(session_ctx("asker"), "kubernetes")  # this process has an index
    other = Bot(Services(settings=services.settings, db=Database(services.settings.database_url), prompts=services.prompts,
                         clock=FixedClock(services.clock.now()), registry=build_registry()))
    try:
        assert keys(say(other, "asker", "general", "skills add scala")) == ["skills.added"]
        assert "asker" in names(find_experts(session_ctx("tom"), "scala").exact)
    finally:
        other.services.db.dispose()


def test_alias_add_is_for_admins_and_works(bot: Bot, org: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    assert keys(say(bot, "asker", "general", "alias add kates kubernetes")) == ["error.not_allowed"]
    make_person(bot, "camille")
    assert keys(say(bot, "camille", "general", "alias add ml-ops = machine learning")) == ["expert.alias.added"]
    assert keys(say(bot, "camille", "general", "alias add rust rust")) == ["expert.alias.same"]
    assert "mia" in names(find_experts(session_ctx("asker"), "ml ops").exact)
    out = say(bot, "asker", "general", "alias list")
    assert keys(out) == ["expert.alias.list"] and "ml ops" in out[0].reply.card.body


def test_aliases_file_from_settings(bot: Bot, org: dict[str, int], session_ctx, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "aliases.yaml"
    path.write_text("groups:\n  - [kubernetes, kubi]\n", encoding="utf-8")
    bot.services.settings.aliases_file = str(path)
    bot.services.extras.pop("expertise", None)
    assert "kate" in names(find_experts(session_ctx("asker"), "kubi").exact)


def test_evidence_reads_stay_in_their_workspace(bot: Bot, org: dict[str, int]) -> None:
    now = bot.services.clock.now()
    other = IncomingMessage(id="x1", text="help", sender=UserRef(PLATFORM, "T2", "zoe", "Zoe"), addressed=True,
                            conversation=ConversationRef(PLATFORM, "T2", "dm-zoe", "dm"), sent_at=now)
    bot.handle(other)
    with bot.services.db.session("T2") as s:
        zoe = s.scalar(select(Person).where(Person.external_id == "zoe"))
        xstore.add_evidence(s, "T2", zoe.id, "#kubernetes", "help", now, source_ref="t2")  # type: ignore[union-attr]
    with bot.services.db.session(TENANT) as s:
        assert "kubernetes" not in EvidenceBook.load(s, TENANT).topics
    with bot.services.db.session("T2") as s:
        assert list(EvidenceBook.load(s, "T2").topics) == ["kubernetes"]
