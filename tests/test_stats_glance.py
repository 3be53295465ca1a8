"""At a glance (handlers/stats/glance.py): an animator's channels in one card, on Slack's App
Home (the real signed-HTTP path: app_home_opened → views.publish on the mock, checked against
Slack's spec) and in the Teams personal chat (the real turn, the card checked against the
Adaptive Card schema), in the reader's language; nothing on the Home of someone without
channels; a private channel shown only to its own animator."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Iterator

import jsonschema
import pytest
from sqlalchemy import select

from bot.core import Bot
from store.models.contribution import HelpRequest
from store.models.core import Conversation, ConversationMember, Person, Role
from store.models.social import Message
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackServer, seed_people, user_id
from tests.harness.teams import TENANT as TEAMS_TENANT
from tests.harness.teams import TeamsHarness
from tests.scenarios import Step

SALES = ("sophie", "thomas", "lucas", "emma", "hugo", "lea", "nathan", "chloe", "louis", "ines")


def activity(bot: Bot, tenant: str, *, animator: str = "julien", channel: str = "sales", role: bool = True) -> None:
    """Ten members in #channel, six of whom posted in the last 28 days, one question unanswered."""
    now = bot.services.clock.now()
    with bot.services.db.session(tenant) as s:
        people = {p.handle: p for p in s.scalars(select(Person))}
        conv = s.scalar(select(Conversation).where(Conversation.name == channel))
        assert conv is not None
        if role and s.scalar(select(Role.id).where(Role.person_id == people[animator].id, Role.conversation_id == conv.id)) is None:
            s.add(Role(person_id=people[animator].id, role="animator", conversation_id=conv.id, created_at=now - timedelta(days=90)))
        members = set(s.scalars(select(ConversationMember.person_id).where(ConversationMember.conversation_id == conv.id)))
        for handle in (*SALES, animator):
            if people[handle].id not in members:
                s.add(ConversationMember(conversation_id=conv.id, person_id=people[handle].id, joined_at=now - timedelta(days=90)))
        for i, handle in enumerate(SALES[:6]):
            s.add(Message(conversation_id=conv.id, external_id=f"glance-{channel}-{i}", author_id=people[handle].id,
                          text="devis Airbus", sent_at=now - timedelta(days=i + 1)))
        s.add(HelpRequest(source_key=f"glance-{channel}", number=900, asker_id=people["thomas"].id, question="Qui connaît Safran ?",
                          conversation_id=conv.id, status="open", created_at=now - timedelta(days=3)))
        for p in people.values():  # created long ago: members for the whole period
            p.created_at = now - timedelta(days=400)


# Slack App Home ----------------------------------------------------------------------
@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    activity(bot, TEAM)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield s
    s.close()
    assert s.mock.violations == [], "every Web API call must match Slack's spec"


def home_of(server: SlackServer, handle: str) -> dict[str, Any]:
    event = {"type": "app_home_opened", "user": user_id(handle), "channel": "D" + handle.upper(), "tab": "home"}
    assert server.post_json(server.event_payload(event)).status == 200
    server.drain()
    publish = server.mock.of("views.publish")[-1]
    assert publish.args["user_id"] == user_id(handle)
    view = publish.args["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_slack_home_shows_the_animators_channels_at_a_glance(server: SlackServer) -> None:
    view = home_of(server, "julien")  # Julien reads French
    text = json.dumps(view, ensure_ascii=False)
    assert view["type"] == "home"
    assert "Vos canaux en un coup d'œil" in text
    with server.bot.services.db.session(TEAM) as s:
        sales = s.scalar(select(Conversation).where(Conversation.name == "sales"))
    assert f"<#{sales.external_id}>" in text, "the channel as a link"
    assert "11 membres" in text and "6 contributeurs en 28 jours (55 %)" in text and "1 demande d'aide en attente" in text
    assert any(e.get("action_id") == "causette_profile_edit" for b in view["blocks"] for e in b.get("elements", []))


def test_slack_home_of_someone_without_channels_has_no_glance(server: SlackServer) -> None:
    text = json.dumps(home_of(server, "emma"), ensure_ascii=False)  # Emma animates nothing
    assert "at a glance" not in text and "coup d'œil" not in text and "You animate no channel" not in text
    assert "causette_profile_edit" in text


def test_slack_home_of_an_english_referent(server: SlackServer) -> None:
    with server.bot.services.db.session(TEAM) as s:
        james = s.scalar(select(Person).where(Person.handle == "james"))
        sales = s.scalar(select(Conversation).where(Conversation.name == "sales"))
        s.add(Role(person_id=james.id, role="referent", conversation_id=sales.id))
    text = json.dumps(home_of(server, "james"), ensure_ascii=False)
    assert "Your channels at a glance" in text and "6 contributors in 28 days" in text and "1 help request waiting" in text


# Teams personal chat -----------------------------------------------------------------
@pytest.fixture(scope="module")
def card_validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(spec_file("adaptive-card-1.5.json").read_text()))


def cards(harness: TeamsHarness) -> list[dict[str, Any]]:
    return [a.content for act in harness.adapter.activity_buffer for a in act.attachments or []
            if a.content_type == "application/vnd.microsoft.card.adaptive"]


def test_teams_personal_chat_card_at_a_glance(bot: Bot, card_validator: jsonschema.Draft6Validator) -> None:
    harness = TeamsHarness(bot)  # the demo: Julien animates #sales
    activity(bot, TEAMS_TENANT)
    seen = harness.run_step(Step("julien", "dm", "aperçu", expect=("stats.glance.reply",)))
    assert [s.key for s in seen] == ["stats.glance.reply"]
    [card] = cards(harness)
    assert not list(card_validator.iter_errors(card)), "a valid Adaptive Card 1.5"
    text = json.dumps(card, ensure_ascii=False)
    assert "Vos canaux en un coup d'œil" in text and "#sales" in text and "demande d'aide en attente" in text
    assert "#direction" not in text


def test_teams_private_channel_only_in_its_own_animators_glance(bot: Bot) -> None:
    harness = TeamsHarness(bot)
    activity(bot, TEAMS_TENANT, animator="julien", channel="direction")  # private; Julien animates it
    harness.run_step(Step("julien", "dm", "glance", expect=("stats.glance.reply",)))
    assert "#direction" in json.dumps(cards(harness), ensure_ascii=False)
    harness.adapter.activity_buffer.clear()
    seen = harness.run_step(Step("lucas", "dm", "glance", expect=("stats.glance.none",)))  # animates nothing
    assert [s.key for s in seen] == ["stats.glance.none"] and "direction" not in seen[0].text
