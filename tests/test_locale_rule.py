"""The one locale rule (bot/locale.py, adapters/shell.py): a private reply or a DM is in the
recipient's language; a post in a channel is in the channel's language, whoever asked; then
the workspace default, then the configured one. Checked on the rule itself and on what Slack
and Teams actually send (the adapters' own strings and the core's replies)."""
from __future__ import annotations

import asyncio
from typing import Iterator

import pytest
from botbuilder.schema import Activity

from adapters.shell import DeliveryShell
from adapters.slack.sender import Origin
from bot import locale as rule
from bot.core import Bot
from bot.types import ConversationRef, Outbound, Reply, UserRef
from store.models.core import Person, Workspace
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackHarness, SlackServer, channel_id, rendered_text, seed_people, user_id
from tests.harness.teams import TENANT, TeamsHarness
from tests.harness.teams import channel_id as teams_channel
from tests.harness.teams import user_id as teams_user
from tests.scenarios import Step

LONG = "word " * 7000  # past Slack's top-level text limit and Teams' 28 KiB: the adapter adds its own note
SLACK_CUT = {"en": "Shortened to fit in Slack", "fr": "Raccourci pour tenir dans Slack"}
TEAMS_CUT = {"en": "shortened: this card was too long for Teams", "fr": "raccourci : cette carte était trop longue pour Teams"}
ACK = {"en": "I sent you my answer in our personal chat", "fr": "je vous ai répondu dans notre conversation privée"}


def language(text: str, table: dict[str, str]) -> str:
    found = [lang for lang, words in table.items() if words in text]
    assert len(found) == 1, (found, text[-300:])
    return found[0]


# The rule ------------------------------------------------------------------------
@pytest.mark.parametrize("private, person, channel, workspace, expected", [
    (True, "fr", "en", "en", "fr"),      # a DM follows the person, not the channel it came from
    (False, "fr", "en", "fr", "en"),     # a channel post follows the channel, not who asked
    (True, None, "fr", "en", "en"),      # a person without a locale: the workspace's
    (False, "fr", None, "de", "de"),     # a channel without a language: the workspace's
    (False, None, None, None, "it"),     # nothing stored: the configured default
])
def test_the_rule(private: bool, person: str | None, channel: str | None, workspace: str | None, expected: str) -> None:
    assert rule.choose("it", workspace, private=private, person=person, channel=channel) == expected


@pytest.mark.parametrize("person, said, workspace, expected", [
    ("fr", "en", "en", "fr"),   # the person's own setting wins over what the messenger says
    (None, "fr", "en", "fr"),   # else the messenger's language, when the bot speaks it
    (None, "de", "en", "en"),   # one the bot does not speak: the workspace's
    (None, None, None, "it"),   # nothing: the configured default
])
def test_a_commands_own_language(person: str | None, said: str | None, workspace: str | None, expected: str) -> None:
    space = Workspace(default_locale=workspace) if workspace else None
    someone = Person(locale=person)
    assert rule.for_actor("it", space, someone, said) == expected


def test_the_shell_reads_the_rows(bot: Bot) -> None:
    seed_people(bot)
    shell = DeliveryShell(bot.services)
    sophie, general, sales = user_id("sophie"), channel_id("general"), channel_id("sales")
    assert shell.locale(TEAM, sophie, general, private=True) == "fr"
    assert shell.locale(TEAM, sophie, general, private=False) == "en"
    assert shell.locale(TEAM, user_id("james"), sales, private=False) == "fr"
    with bot.services.db.session(TEAM) as s:
        ws = s.get(Workspace, TEAM)
        assert ws is not None
        ws.default_locale = "fr"
    assert shell.locale(TEAM, "U-unknown", None, private=True) == "fr"
    assert shell.translator(TEAM, sophie, private=True)("teams.private_ack", name="x").startswith("x, je vous")


# Slack: what the sender adds to a message ---------------------------------------------
@pytest.fixture
def slack(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield s
    s.close()
    assert s.mock.violations == []


def test_slack_dm_is_in_the_recipients_language(slack: SlackServer) -> None:
    slack.adapter.sender.deliver([Outbound(Reply(text=LONG), to=UserRef("slack", TEAM, user_id("sophie")))])
    [dm] = slack.mock.calls
    assert dm.args["channel"] == user_id("sophie") and language(rendered_text(dm), SLACK_CUT) == "fr"


def test_slack_channel_post_follows_the_channels_language_not_the_askers(slack: SlackServer) -> None:
    for who, channel in (("sophie", "general"), ("james", "sales")):
        origin = Origin(team=TEAM, user=user_id(who), channel=channel_id(channel))
        to = ConversationRef("slack", TEAM, channel_id(channel), "public")
        slack.adapter.sender.deliver([Outbound(Reply(text=LONG), to=to)], origin)
    general, sales = slack.mock.calls
    assert language(rendered_text(general), SLACK_CUT) == "en", "French sophie asked, but #general is English"
    assert language(rendered_text(sales), SLACK_CUT) == "fr", "English james asked, but #sales is French"


def test_slack_private_reply_and_hint_in_a_channel_are_in_the_readers_language(slack: SlackServer) -> None:
    general = ConversationRef("slack", TEAM, channel_id("general"), "public")
    sophie = UserRef("slack", TEAM, user_id("sophie"))
    slack.adapter.sender.deliver([Outbound(Reply(text=LONG), to=general, private_for=sophie)])
    slack.mock.failures["chat.postMessage"] = ["not_in_channel"]
    slack.adapter.sender.deliver([Outbound(Reply(text="for everyone"), to=general)], Origin(team=TEAM, user=sophie.id))
    ephemeral, refused, hint = slack.mock.calls
    assert ephemeral.method == "chat.postEphemeral" and language(rendered_text(ephemeral), SLACK_CUT) == "fr"
    assert refused.args["channel"] == general.id
    assert hint.args["channel"] == sophie.id and "Invitez-moi" in hint.args["text"]


# Teams: the adapter's own strings ------------------------------------------------------
def teams_sent(harness: TeamsHarness) -> list[tuple[str, str]]:
    """(conversation id, text and card text) of every activity the bot sent so far."""
    out = []
    for a in harness.adapter.activity_buffer:
        assert isinstance(a, Activity) and a.conversation is not None
        cards = " ".join(str(att.content) for att in a.attachments or [])
        out.append((a.conversation.id.split(";")[0], f"{a.text or ''} {cards}"))
    return out


def test_teams_channel_post_follows_the_channels_language(bot: Bot) -> None:
    h = TeamsHarness(bot)
    for who, channel in (("sophie", "general"), ("james", "sales")):
        h.send(h.activity(Step(who, "#" + channel, "help")))
    h.adapter.activity_buffer.clear()
    for channel in ("general", "sales"):  # proactive posts, as a job's
        to = ConversationRef("teams", TENANT, teams_channel(channel), "public")
        asyncio.run(h.delivery.deliver([Outbound(Reply(text=LONG), to=to)]))
    asyncio.run(h.delivery.deliver([Outbound(Reply(text=LONG), to=UserRef("teams", TENANT, teams_user("sophie")))]))
    (general, general_text), (sales, sales_text), (dm, dm_text) = teams_sent(h)
    assert (general, sales, dm) == (teams_channel("general"), teams_channel("sales"), "a:dm-sophie")
    assert [language(t, TEAMS_CUT) for t in (general_text, sales_text, dm_text)] == ["en", "fr", "fr"]


def test_teams_private_answer_in_a_channel_acknowledged_in_the_channels_language(bot: Bot) -> None:
    h = TeamsHarness(bot)
    for who, channel in (("sophie", "general"), ("james", "sales")):
        h.adapter.activity_buffer.clear()
        h.send(h.activity(Step(who, "#" + channel, "help")))
        sent = teams_sent(h)
        private = [text for conv, text in sent if conv == "a:dm-" + who]
        acks = [text for conv, text in sent if conv == teams_channel(channel)]
        assert private and len(acks) == 1
        assert language(acks[0], ACK) == ("en" if channel == "general" else "fr"), f"{who} in #{channel}"


# Both: a French person in an English channel ---------------------------------------------
def test_french_person_in_an_english_channel_on_slack(bot: Bot) -> None:
    """The help request card everyone reads is in English (#general's language); the idea's
    confirmation only Sophie reads is in French."""
    slack = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    try:
        card = slack.run_step(Step("sophie", "#general", "ask Any template for an aeronautics tender?"))
        confirmation = slack.run_step(Step("sophie", "#general", "idea Quieter meeting rooms"))
    finally:
        slack.close()
    assert [s.key for s in card] == ["help_requests.card"] and "Help request #1" in card[0].text
    assert "idea.posted" in [s.key for s in confirmation]
    assert "Merci ! Votre idée #1" in next(s.text for s in confirmation if s.key == "idea.posted")


def test_french_person_in_an_english_channel_on_teams(bot: Bot) -> None:
    h = TeamsHarness(bot)
    card = h.run_step(Step("sophie", "#general", "ask Any template for an aeronautics tender?"))
    h.adapter.activity_buffer.clear()
    confirmation = h.run_step(Step("sophie", "#general", "idea Quieter meeting rooms"))
    assert [s.key for s in card] == ["help_requests.card"] and "Help request #1" in card[0].text
    assert "Merci ! Votre idée #1" in next(s.text for s in confirmation if s.key == "idea.posted")
    sent = teams_sent(h)
    assert any(conv == "a:dm-sophie" and "Merci" in text for conv, text in sent)
    assert [language(text, ACK) for conv, text in sent if conv == teams_channel("general")] == ["en"]


def test_kudos_card_follows_the_channel_not_the_french_sender(bot: Bot) -> None:
    """Sophie (French) thanks Lucas in #general (English): the public card everyone reads is in
    English, as idea and help-request cards are."""
    slack = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    try:
        card = slack.run_step(Step("sophie", "#general", "merci @lucas pour la relecture"))
    finally:
        slack.close()
    public = next(s for s in card if s.key == "kudos.card")
    assert " thanks " in public.text and "remercie" not in public.text
