"""Property tests: random text (control characters, emoji, 10,000-character strings,
SQL-looking text) through the parser, the bot and the console. Never a crash, always a
localized answer to an addressed message, never a partial write."""
from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from adapters.console.messenger import ConsoleMessenger
from bot.core import Bot
from bot.registry import Registry
from handlers import build_registry
from store.models.core import Person, PersonSkill, Skill, SkillAlias
from tests.test_expertise import TENANT, keys, make_person, say

NASTY = ["'; DROP TABLE people; --", "\" OR 1=1 --", "%", "_", "\\", "\x00", "\x1b[2J", "\u202e", "\u200b", "⟦@U1⟧",
         "🤖", "👩🏽‍💻", "é", "ß", "İ", "\n", "\t", "<script>", "<@U123>", "<!channel>", "@here", "#", ",", ";"]
PREFIXES = ["", "who knows ", "qui connaît ", "expert ", "profile ", "profile set ", "profile set tz ", "profile set mentions ",
            "skills ", "skills add ", "skills remove ", "compétences ajouter ", "alias add ", "alias list ", "help ", "lang "]
pieces = st.one_of(st.text(max_size=30), st.sampled_from(NASTY))
random_text = st.one_of(
    st.lists(pieces, max_size=8).map("".join),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "é", "🤖", "\x07", ", x", "' OR '1'='1"]), st.integers(2000, 10000)),
)
commands = st.builds(lambda p, t: p + t, st.sampled_from(PREFIXES), random_text)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])
REGISTRY: Registry = build_registry()


@given(random_text)
@settings(max_examples=300, deadline=None)
def test_registry_match_and_closest_never_raise(text: str) -> None:
    match = REGISTRY.match(text)
    assert match is None or match.spec in REGISTRY.commands
    REGISTRY.closest(text)


def _counts(bot: Bot) -> tuple[int, int, int]:
    with bot.services.db.session(TENANT) as s:
        return (s.scalar(select(func.count(PersonSkill.id))) or 0, s.scalar(select(func.count(Skill.id))) or 0,
                s.scalar(select(func.count(SkillAlias.id))) or 0)


def _profile(bot: Bot) -> tuple[str, ...]:
    with bot.services.db.session(TENANT) as s:
        p = s.scalar(select(Person).where(Person.external_id == "ana"))
        assert p is not None
        return (p.title, p.department, p.site, p.tz, p.languages, str(p.accepts_mentions), p.locale or "")


WRITES = {"skills.added", "skills.confirmed", "skills.added_and_confirmed", "skills.removed", "skills.removed_some",
          "expert.alias.added", "profile.set.done", "profile.set.cleared", "profile.set.mentions_on",
          "profile.set.mentions_off", "lang.set", "lang.workspace_set"}


@given(commands)
@SETTINGS
def test_bot_always_answers_and_never_writes_half(bot: Bot, text: str) -> None:
    make_person(bot, "ana", ("python",))
    before, profile = _counts(bot), _profile(bot)
    out = say(bot, "ana", "general", text)
    assert len(out) >= 1, text
    prompts = bot.services.prompts
    for o in out:
        assert o.reply.key and o.reply.key != "error.internal", (text, o.reply.key)
        assert o.reply.key in prompts.keys("en") and o.reply.text.strip()
    if not WRITES & set(keys(out)):
        assert _counts(bot) == before and _profile(bot) == profile, (text, keys(out))


@given(st.lists(st.one_of(commands.map(lambda t: "/causette " + t), random_text,
                          st.sampled_from(["/as", "/as 🤖", "/in #", "/in #x y", "/dm", "/click 99", "/form a=1", "/clock +x"])),
                max_size=4))
@SETTINGS
def test_console_never_raises(bot: Bot, lines: list[str]) -> None:
    make_person(bot, "ana")
    console = ConsoleMessenger(bot, TENANT, "ana", out=io.StringIO())
    for line in lines:
        console.handle_line(line)
    printed = console.out.getvalue()  # type: ignore[attr-defined]
    prompts = bot.services.prompts
    assert prompts.t("en", "error.internal") not in printed and prompts.t("fr", "error.internal") not in printed
