"""The one locale rule, end to end (docs/ARCHITECTURE.md, bot/locale.py): an English and a
French session of common commands, through the console, Slack (signed HTTP) and Teams
harnesses, and no delivered message has a line in the other language.

Lines are attributed by the prompt keys that made them, not by guessing words: the
catalogue's observer (`Prompts.observer`) notes every lookup's language, key and text; a
lookup whose text appears in a delivered reply (its text, card, form) belongs to that reply,
and must be in the reply's language: the recipient's for a private reply or a DM, the
channel's for a post in a channel. Lookups whose text reads the same in both languages
(a bare `{name}`) say nothing and are skipped.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Mapping

import pytest

from bot.core import Bot
from bot.i18n import Prompts
from bot.types import ConversationRef, Effect, Outbound, UserRef
from store.demo import CHANNELS
from tests.conftest import spec_file
from tests.harness.console import ConsoleHarness
from tests.harness.slack import SlackHarness
from tests.harness.teams import TeamsHarness
from tests.scenarios import Seen, Step

# Demo channels' languages and the languages the session gives people.
CHANNEL_LANG = {name: lang for name, _, lang in CHANNELS}
PERSON_LANG = {"thomas": "en", "sophie": "fr", "julien": "fr", "lucas": "en"}
OTHER = {"en": "fr", "fr": "en"}


def session(who: str, where: str, mention: str, idea: str) -> list[Step]:
    """Common commands typed by `who` in `where` (English command words work in both languages)."""
    return [Step(who, where, text) for text in (
        "help", "profile", "who knows kubernetes", f"idea {idea}", "ideas",
        f"kudos @{mention} for the runbook review", f"thanks @{mention} for the help",
        "ask How do we rotate the signing keys?", "asks",
        "notifications", "feed", "away for 2 weeks", "back",
    )] + [Step(who, "dm", text) for text in ("profile", "asks", "notifications")]


SESSION: list[Step] = [
    Step("thomas", "dm", "lang en"), Step("lucas", "dm", "lang en"),
    Step("sophie", "dm", "lang fr"), Step("julien", "dm", "lang fr"),
    *session("thomas", "#engineering", "lucas", "Add a dark mode to the dashboard"),  # English person, English channel
    *session("sophie", "#sales", "julien", "Un badge pour les nouveaux arrivants"),  # French person, French channel
    *session("sophie", "#engineering", "lucas", "Weekly office hours for onboarding"),  # French person, English channel
    *session("thomas", "#sales", "julien", "Traduire le wiki interne en anglais"),  # English person, French channel
    Step("julien", "#general", "digest preview #sales"),  # the animator previews a French digest
]


def handle_of(user_id: str) -> str:
    """A demo handle from a console, Slack (`UTHOMAS`) or Teams (`29:thomas`) user id."""
    if user_id.startswith("29:"):
        return user_id[3:]
    if user_id[:1] == "U" and user_id[1:].isupper():
        return user_id[1:].lower()
    return user_id


def channel_of(conv: ConversationRef) -> str:
    """A demo channel name from a console, Slack (`CSALES`) or Teams (`19:sales@thread.tacv2`) id."""
    cid = conv.id
    if cid.startswith("19:"):
        return cid[3:].split("@", 1)[0]
    if cid[:1] == "C" and cid[1:].replace("-", "").isupper():
        return cid[1:].lower()
    return conv.name or cid


def expected_lang(out: Outbound, step: Step) -> str:
    """The one locale rule on a delivered reply: the reader's language when it is private,
    else the channel's."""
    if out.private_for is not None:
        return PERSON_LANG[handle_of(out.private_for.id)]
    if isinstance(out.to, UserRef):
        return PERSON_LANG[handle_of(out.to.id)]
    if out.to.kind == "dm":
        _, dm, who = out.to.id.partition("dm-")
        return PERSON_LANG[who if dm else step.user]
    return CHANNEL_LANG[channel_of(out.to)]


def strings(value: object) -> Iterator[str]:
    """Every string a reply carries (text, card, form, actions)."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.name not in ("params", "key"):
                yield from strings(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from strings(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)


Lookup = tuple[str, str, str]  # (language, key, text)
CONSOLE_OWN = "console."  # the console's own lines: in the keyboard's language, whoever reads the reply


class Recorder:
    """Notes every catalogue lookup made while it is attached; the console's own apart."""

    def __init__(self, prompts: Prompts) -> None:
        self.prompts = prompts
        self.lookups: list[Lookup] = []
        self.console: list[Lookup] = []
        self._comparing = False

    def __call__(self, lang: str, key: str, params: Mapping[str, object], text: str) -> None:
        if self._comparing:  # the other language's rendering below is not a lookup of the session
            return
        self._comparing = True
        try:
            neutral = self.prompts.t(OTHER[lang], key, **params) == text
        finally:
            self._comparing = False
        if not neutral and len(text.strip()) > 3:
            (self.console if key.startswith(CONSOLE_OWN) else self.lookups).append((lang, key, text))


def mixed_lines(step: Step, delivered: list[Outbound], shown: list[Seen], lookups: list[Lookup]) -> list[str]:
    """Each delivered reply's lines that a lookup in the other language produced: in what the
    reply carries, and in what the messenger showed for it (its own labels and buttons)."""
    assert [o.reply.key for o in delivered] == [s.key for s in shown], f"{step}: replies and what was shown differ"
    found: list[str] = []
    for out, seen in zip(delivered, shown):
        lang = expected_lang(out, step)
        carried = [*strings(out.reply), seen.text]
        used = [(la, key) for la, key, text in lookups if any(text in s for s in carried)]
        found += [f"{step.user} in {step.where}: {step.text!r} -> {out.reply.key} ({lang} expected): "
                  f"{key} looked up in {la}" for la, key in used if la != lang]
    return found


@dataclasses.dataclass
class Played:
    mixed: list[str]  # reply lines in the other language
    attributed: int  # lookups found in a delivered reply
    console: list[Lookup]  # the console's own lines


def play(bot: Bot, run_step: Callable[[Step], list[Seen]], delivered: Callable[[], list[Outbound]]) -> Played:
    """Plays the session, noting which language each delivered line came from."""
    prompts = bot.services.prompts
    recorder = Recorder(prompts)
    mixed: list[str] = []
    attributed = 0
    prompts.observer = recorder
    try:
        for step in SESSION:
            recorder.lookups = []
            shown = run_step(step)
            outs = delivered()
            assert outs, f"{step}: nothing was delivered"
            assert not any(o.reply.key.startswith("error.unknown") for o in outs), f"{step}: not understood"
            mixed += mixed_lines(step, outs, shown, recorder.lookups)
            attributed += sum(1 for _, _, text in recorder.lookups
                              if any(text in s for o in outs for s in strings(o.reply)))
    finally:
        prompts.observer = None
    return Played(mixed, attributed, recorder.console)


def check(played: Played) -> None:
    assert played.attributed > len(SESSION), "too few lines were attributed to a language for the test to mean anything"
    assert not played.mixed, "lines in the other language:\n" + "\n".join(played.mixed)


@pytest.mark.parametrize("keyboard", ["en", "fr"])
def test_console_one_language(bot: Bot, keyboard: str) -> None:
    """Replies follow the rule whatever the keyboard's language; the console's own lines
    (where a reply goes, who sees it, forms) are in the keyboard's (`console --lang`)."""
    harness = ConsoleHarness(bot)
    console = harness.console
    console.lang = keyboard
    seen: list[Outbound] = []
    real = console.deliver

    def deliver(effects: list[Effect]) -> None:
        seen.extend(e for e in effects if isinstance(e, Outbound))
        real(effects)

    console.deliver = deliver  # type: ignore[method-assign]

    def run(step: Step) -> list[Seen]:
        seen.clear()
        return harness.run_step(step)

    played = play(bot, run, lambda: list(seen))
    check(played)
    assert played.console, "the console printed none of its own lines"
    assert {lang for lang, _, _ in played.console} == {keyboard}, played.console


def test_slack_one_language(bot: Bot) -> None:
    harness = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    try:
        check(play(bot, harness.run_step, lambda: list(harness.recorded)))
        assert harness.server.mock.violations == []
    finally:
        harness.close()


def test_teams_one_language(bot: Bot) -> None:
    harness = TeamsHarness(bot)
    check(play(bot, harness.run_step, lambda: list(harness.recorded)))
