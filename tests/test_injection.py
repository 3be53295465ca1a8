"""Nothing a person types (or a platform syncs) ever becomes a live mention, broadcast or
labelled link in what the bot posts: every field a user controls is fed hostile text through
the real Slack server (signed HTTP into Bolt, the local Web API mock) and the Teams turn
logic, and every `text`, block and card element actually sent is checked. Only the pings
the bot itself means (the kudos recipient, routed experts) may be live.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import Bot
from bot.text import split_markers
from bot.types import Outbound
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackHarness, channel_id, user_id
from tests.harness.teams import TeamsHarness
from tests.scenarios import Step

SLACK_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url", "views.open", "views.publish")
ATTACKER_TARGETS = ("U9", "UBOSS", "29:boss")

# What a person can type (Slack delivers it escaped) ...
TYPED = ("<@U9>", "<!here>", "<!channel>", "<!subteam^S1|@team>", "<#C9|secret>", "<https://evil.example|Reset>",
         "[Reset your password](https://evil.example/login)", "<http://evil.example>", '<a href="https://evil.example">x</a>',
         "<b>bold</b>", "<at>Boss</at>", "@here", "@channel", "@everyone", "*b*", "_i_", "~s~", "`c`", "\\", "#", "&amp;",
         "&lt;@U9&gt;", "]", "(", ")", "|", "\u27e6@U9\u27e7", "\u27e6*00@UBOSS\u27e7", "\u27ea`x`\u27eb")
# ... and real Slack tokens (what Slack sends when someone really mentions or links).
SLACK_TOKENS = ("<@U9>", "<@UBOSS|boss>", "<@UNATHAN>", "<!here>", "<!channel>", "<!everyone>", "<!subteam^S1|@team>",
                "<#C9|secret>", "<#CGENERAL|general>", "<https://evil.example|Reset your password>", "<mailto:a@b.c|mail>",
                "<http://evil.example>")
WORDS = st.text(alphabet="abc xyz_-é", min_size=0, max_size=6)
TYPED_TEXT = st.lists(st.one_of(st.sampled_from(TYPED), WORDS), min_size=1, max_size=6).map(" ".join)
SLACK_PIECES = st.lists(st.one_of(st.sampled_from(TYPED).map(lambda s: ("typed", s)), WORDS.map(lambda s: ("typed", s)),
                                  st.sampled_from(SLACK_TOKENS).map(lambda s: ("token", s))), min_size=1, max_size=6)
SLACK_FIELDS = ("skills", "title", "display_name", "idea", "help", "kudos", "hashtag")
TEAMS_FIELDS = ("skills", "title", "display_name", "idea", "help", "kudos", "hashtag")
EXAMPLES_PER_FIELD = 50


def slack_wire(pieces: list[tuple[str, str]]) -> str:
    """Slack's own text for what was typed: literal text escaped, tokens as they come."""
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(esc(s) if kind == "typed" else s for kind, s in pieces)


def one_line(text: str) -> str:
    return " ".join(text.split()) or "x"


# Slack checks --------------------------------------------------------------------
_SLACK_TOKEN = re.compile(r"<([^<>]*)>")


def slack_mrkdwn_strings(args: Mapping[str, Any]) -> list[str]:
    """Every string of a call that Slack parses as mrkdwn: `text` and mrkdwn text objects."""
    out: list[str] = []
    if args.get("text") and args.get("mrkdwn", True) is not False:
        out.append(str(args["text"]))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for key in ("blocks", "view"):
        value = args.get(key)
        walk(json.loads(value) if isinstance(value, str) else value)
    return out


def slack_problems(args: Mapping[str, Any], allowed: set[str]) -> list[str]:
    problems = []
    if str(args.get("parse", "")).lower() == "full" or args.get("link_names") in (True, 1, "1", "true"):
        problems.append(f"parse/link_names set: {args.get('parse')!r} {args.get('link_names')!r}")
    for text in slack_mrkdwn_strings(args):
        for m in _SLACK_TOKEN.finditer(text):
            token = m.group(1)
            if token not in allowed:
                problems.append(f"live <{token}> in {text!r}")
    return problems


def test_the_slack_check_catches_live_tokens() -> None:
    for bad in ("hi <@U9>", "<!here>", "<https://evil|label>", "<#C9>", "<!subteam^S1>"):
        assert slack_problems({"text": bad}, set()), bad
    assert slack_problems({"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "<@U9>"}]}]}, set())
    assert slack_problems({"text": "x", "link_names": True}, set())
    assert slack_problems({"text": "thanks <@UEMMA> &lt;@U9&gt;"}, {"@UEMMA"}) == []
    assert slack_problems({"blocks": [{"type": "button", "text": {"type": "plain_text", "text": "<@U9>"}}]}, set()) == []


# Teams checks --------------------------------------------------------------------
_CODE_SPAN = re.compile(r"`[^`]*`")


def unescaped(text: str, specials: str) -> list[str]:
    """Characters of `specials` not preceded by an escaping backslash."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in specials:
            found.append(text[i])
        i += 1
    return found


def teams_problems(activity: Mapping[str, Any], allowed: set[str]) -> list[str]:
    problems = []
    entities = [e for e in activity.get("entities") or [] if e.get("type") == "mention"]
    for e in entities:
        if e["mentioned"]["id"] not in allowed:
            problems.append(f"mention entity for {e['mentioned']['id']}")
    text = str(activity.get("text") or "")
    for e in entities:
        text = text.replace(e["text"], "")
    text = _CODE_SPAN.sub("", text)  # the bot's own code spans: Markdown is not interpreted inside
    if bad := unescaped(text, "<>[]()*_~`"):
        problems.append(f"live Markdown/HTML {bad} in text {activity.get('text')!r}")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                check(str(node.get("text", "")))
            if node.get("type") == "FactSet":
                for fact in node.get("facts", []):
                    check(str(fact.get("title", "")))
                    check(str(fact.get("value", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    def check(card_text: str) -> None:
        if bad := unescaped(card_text, "<>[]()*_~`&"):
            problems.append(f"live Markdown {bad} in card text {card_text!r}")

    for attachment in activity.get("attachments") or []:
        walk(attachment.get("content"))
    return problems


def test_the_teams_check_catches_live_markup() -> None:
    assert teams_problems({"text": "[Reset](https://evil)"}, set())
    assert teams_problems({"text": "<at>Boss</at>", "entities": [
        {"type": "mention", "text": "<at>Boss</at>", "mentioned": {"id": "29:boss"}}]}, set())
    assert teams_problems({"attachments": [{"content": {"body": [{"type": "TextBlock", "text": "**b**"}]}}]}, set())
    assert teams_problems({"attachments": [{"content": {"body": [{"type": "FactSet", "facts": [
        {"title": "x", "value": "[a](b)"}]}]}}]}, set())
    assert teams_problems({"text": "\\[Reset\\]\\(x\\) `help [x]` &lt;at&gt;"}, set()) == []


# Slack through the real server ---------------------------------------------------
@pytest.fixture
def slack(bot: Bot) -> Iterator[SlackHarness]:
    h = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    yield h
    h.close()


def bot_pings(recorded: list[Outbound], platform: str = "slack") -> set[str]:
    """What the bot itself meant to ping or link, as Slack tokens (`@U…`, `#C…`) or Teams ids:
    its live markers, which only `ctx.mention` / `ctx.channel_link` make."""
    found: set[str] = set()
    for ob in recorded:
        texts = [ob.reply.text]
        if ob.reply.card is not None:
            c = ob.reply.card
            texts += [c.title, c.body, c.footer, *(k + v for k, v in c.fields), *(h + b for h, b in c.sections)]
        for text in texts:
            for kind, value in split_markers(text):
                if kind in ("ping", "link"):
                    found.add(value if platform == "teams" else ("@" if kind == "ping" else "#") + value)
    return found


class SlackDriver:
    def __init__(self, h: SlackHarness) -> None:
        self.h = h
        self.server = h.server
        self.n = 0

    def command(self, who: str, text: str, where: str = "general") -> None:
        fields = self.server.command_fields(user_id(who), channel_id(where), text, channel_name=where, user_name=who)
        assert self.server.post_form(fields).status == 200
        self.server.drain()

    def event(self, event: Mapping[str, Any]) -> None:
        assert self.server.post_json(self.server.event_payload(event)).status == 200
        self.server.drain()

    def play(self, field: str, pieces: list[tuple[str, str]]) -> set[str]:
        """Run the steps that put the hostile text in `field` and show it; returns the allowed pings."""
        if field in ("kudos", "hashtag"):  # a mention (or @handle) in a thanks names a recipient, pinged by design
            pieces = [(k, v.replace("@", "")) for k, v in pieces if not (k == "token" and v.startswith("<@"))] or [("typed", "x")]
        wire = slack_wire(pieces)
        line = one_line(wire)
        allowed: set[str] = set()
        if field == "skills":
            self.command("lucas", f"skills add {line}")
            self.command("lucas", "profile")
            self.command("thomas", f"who knows {line}")
            self.event({"type": "app_home_opened", "user": user_id("lucas"), "channel": "DLUCAS", "tab": "home"})
        elif field == "title":
            self.command("lucas", f"profile set title {line}")
            self.command("thomas", f"profile <@{user_id('lucas')}|lucas>")
        elif field == "display_name":
            typed = " ".join(s for _, s in pieces)  # a profile is raw text, not Slack-escaped
            self.event({"type": "user_change", "user": {"id": user_id("lucas"), "team_id": TEAM, "name": "lucas",
                                                        "profile": {"display_name": typed, "real_name": typed, "title": typed}}})
            self.command("thomas", f"profile <@{user_id('lucas')}|lucas>")
            self.command("thomas", "who knows kubernetes")
            self.command("lucas", f"thanks <@{user_id('emma')}|emma> for the review")
            allowed.add("@" + user_id("emma"))
        elif field == "idea":
            self.command("thomas", f"idea {line} — {wire}")
            self.command("thomas", "ideas")
        elif field == "help":
            self.command("thomas", f"ask {wire}")
            self.command("thomas", "asks")
        elif field == "kudos":
            self.command("thomas", f"thanks <@{user_id('emma')}|emma> for {wire}")
            allowed.add("@" + user_id("emma"))
        elif field == "hashtag":
            tag = re.sub(r"\s+", "", line)[:40]
            self.command("thomas", f"thanks <@{user_id('emma')}|emma> for the help #{tag} #ok{tag}")
            allowed.add("@" + user_id("emma"))
        return allowed


@settings(max_examples=EXAMPLES_PER_FIELD * len(SLACK_FIELDS), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(field=st.sampled_from(SLACK_FIELDS), pieces=SLACK_PIECES)
def test_slack_never_posts_a_live_token_from_user_text(slack: SlackHarness, field: str, pieces: list[tuple[str, str]]) -> None:
    driver = SlackDriver(slack)
    mock = slack.server.mock
    first = len(mock.calls)
    slack.recorded = []
    allowed = driver.play(field, pieces) | (bot_pings(slack.recorded) - {"@" + t for t in ATTACKER_TARGETS})
    calls = [c for c in mock.calls[first:] if c.method in SLACK_METHODS]
    assert calls, "the bot answered"
    for call in calls:
        assert slack_problems(call.args, allowed) == [], (field, slack_wire(pieces), call.method)


def test_slack_echoes_hostile_text_by_name_and_pings_only_the_kudos_recipient(slack: SlackHarness) -> None:
    driver = SlackDriver(slack)
    mock = slack.server.mock
    cases = {
        "skills": ([("token", "<@UNATHAN>"), ("typed", "stuff"), ("token", "<!here>"), ("token", "<https://evil.example|Reset>")],
                   "@Nathan Simon stuff @here Reset (https://evil.example)"),
        "kudos": ([("typed", "great"), ("token", "<https://evil.example|Reset>"), ("typed", "<b>x</b> <!here> [x](http://y)")],
                  "great Reset (https://evil.example) &lt;b&gt;x&lt;/b&gt; &lt;!here&gt; [x](http://y)"),
    }
    for field, (hostile, shown) in cases.items():
        first = len(mock.calls)
        driver.play(field, hostile)
        calls = [c for c in mock.calls[first:] if c.method in SLACK_METHODS]
        blob = "\n".join(s for c in calls for s in slack_mrkdwn_strings(c.args))
        assert shown in blob, blob  # echoed, by name, inert
        live = {m.group(1) for c in calls for s in slack_mrkdwn_strings(c.args) for m in _SLACK_TOKEN.finditer(s)}
        assert live == ({"@UEMMA"} if field == "kudos" else set()), live


# Teams through the real turn logic -----------------------------------------------
@pytest.fixture
def teams(bot: Bot) -> TeamsHarness:
    h = TeamsHarness(bot)
    h.sent = []  # type: ignore[attr-defined]
    original = h.delivery._send

    async def recording(turn: Any, conversation_id: str, activity: Mapping[str, Any], update_id: str | None) -> str | None:
        h.sent.append(activity)  # type: ignore[attr-defined]
        return await original(turn, conversation_id, activity, update_id)

    h.delivery._send = recording  # type: ignore[method-assign]
    return h


class TeamsDriver:
    def __init__(self, h: TeamsHarness) -> None:
        self.h = h
        self.newcomers = 0
        self.speakers: set[str] = set()

    def say(self, who: str, text: str, where: str = "#general") -> None:
        self.speakers.add("29:" + who)  # a private answer's public acknowledgement pings its asker
        self.h.run_step(Step(who, where, text))

    def play(self, field: str, text: str) -> set[str]:
        if field in ("kudos", "hashtag"):  # an @handle in a thanks names a recipient, pinged by design
            text = text.replace("@", "")
        line = one_line(text)
        emma = "29:emma"
        if field == "skills":
            self.say("lucas", f"skills add {line}")
            self.say("lucas", "profile")
            self.say("thomas", f"who knows {line}")
        elif field == "title":
            self.say("lucas", f"profile set title {line}")
            self.say("thomas", "profile @lucas")
        elif field == "display_name":
            self.newcomers += 1
            activity = self.h.activity(Step("thomas", "#general", "thanks @emma for the review"))
            activity["from"] = {"id": f"29:newcomer{self.newcomers}", "name": text, "aadObjectId": f"aad-n{self.newcomers}"}
            self.speakers.add(activity["from"]["id"])
            self.h.send(activity)
            self.say("thomas", "who knows kubernetes")
            return {emma}
        elif field == "idea":
            self.say("thomas", f"idea {line} — {text}")
            self.say("thomas", "ideas")
        elif field == "help":
            self.say("thomas", f"ask {text}")
            self.say("thomas", "asks")
        elif field == "kudos":
            self.say("thomas", f"thanks @emma for {text}")
            return {emma}
        elif field == "hashtag":
            tag = re.sub(r"\s+", "", line)[:40]
            self.say("thomas", f"thanks @emma for the help #{tag} #ok{tag}")
            return {emma}
        return set()


@settings(max_examples=EXAMPLES_PER_FIELD * len(TEAMS_FIELDS), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(field=st.sampled_from(TEAMS_FIELDS), text=TYPED_TEXT)
def test_teams_never_sends_a_live_mention_or_link_from_user_text(teams: TeamsHarness, field: str, text: str) -> None:
    driver = TeamsDriver(teams)
    teams.sent.clear()  # type: ignore[attr-defined]
    teams.recorded = []
    allowed = driver.play(field, text) | driver.speakers | (bot_pings(teams.recorded, "teams") - set(ATTACKER_TARGETS))
    assert teams.sent, "the bot answered"  # type: ignore[attr-defined]
    for activity in teams.sent:  # type: ignore[attr-defined]
        assert teams_problems(activity, allowed) == [], (field, text)


def test_teams_idea_with_a_markdown_link_is_shown_inert(teams: TeamsHarness) -> None:
    TeamsDriver(teams).play("idea", "[Reset your password](https://evil.example/login) <at>Boss</at>")
    activities = teams.sent  # type: ignore[attr-defined]
    card_texts = [b["text"] for a in activities for att in a.get("attachments") or []
                  for b in att["content"]["body"] if b.get("type") == "TextBlock"]
    assert any("\\[Reset your password\\]\\(https://evil.example/login\\) \\<at\\>Boss\\</at\\>" in t for t in card_texts), card_texts
    assert all(teams_problems(a, {"29:thomas"}) == [] for a in activities)
