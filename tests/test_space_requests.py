"""Requests for channels and access: routed to the référent (access: the channel's référents
or animators; a private channel's, else the admins), approve / decline once, the bot makes the
change where the platform lets it (console; Slack conversations.create / invite, checked
against Slack's spec; Teams: the approver is told what to click), the requester is told,
every decision audited, and nobody else can read a request."""
from __future__ import annotations

from typing import Iterator

import pytest
from sqlalchemy import select

from adapters.console.messenger import space_changed
from bot.core import Bot
from bot.types import ConversationRef, SpaceChange, UserRef
from store.models.core import AuditLog, Conversation, ConversationMember, Person, Role
from store.models.notifications import Notification
from store.models.referents import SpaceRequest
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackHarness, channel_id, user_id
from tests.test_ideas_support import Driver, everything, keys, outbound


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def grant(d: Driver, handle: str, kind: str, value: str) -> None:
    with d.session() as s:
        person = s.scalar(select(Person).where(Person.handle == handle))
        s.add(Role(person_id=person.id, role="referent", scope_kind=kind, scope_value=value, created_at=d.clock.now()))


def pings(d: Driver, handle: str) -> list[str]:
    with d.session() as s:
        return list(s.scalars(select(Notification.key).join(Person, Person.id == Notification.person_id)
                              .where(Person.handle == handle).order_by(Notification.id)))


def audit(d: Driver) -> list[str]:
    with d.session() as s:
        return list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def changes(effects: list[object]) -> list[SpaceChange]:
    return [e for e in effects if isinstance(e, SpaceChange)]


def test_channel_request_approved_created_and_the_requester_told(d: Driver) -> None:
    grant(d, "alice", "department", "Support")  # thomas works in Support
    filed = outbound(d.say("thomas", "#general", 'request channel #tenders-aero "Answer aeronautics tenders together"'),
                     "requests.filed")
    assert "Alice" in filed.reply.text and filed.private_for is not None
    assert pings(d, "alice") == ["requests.notify.new"]
    assert keys(d.say("hugo", "dm", "request approve 1")) == ["requests.not_found"]      # another person's button
    assert keys(d.say("thomas", "dm", "request approve 1")) == ["requests.not_decider"]  # one's own
    assert keys(d.say("hugo", "dm", "requests")) == ["requests.list_empty"]               # an outsider sees nothing
    effects = d.say("alice", "dm", "request approve 1")
    assert keys(effects) == ["requests.approved"]
    [change] = changes(effects)
    assert change.action == "create" and change.channel.name == "tenders-aero" and change.channel.kind == "public"
    assert [p.id for p in change.people] == ["thomas"] and change.purpose == "Answer aeronautics tenders together"
    assert change.report_to is not None and change.report_to.id == "alice" and change.manual_key == "requests.manual.create"
    assert keys(d.say("alice", "dm", "request approve 1")) == ["requests.already_approved"]
    assert keys(d.say("alice", "dm", "request decline 1 no")) == ["requests.already_approved"]
    d.bot.handle(space_changed(change))  # what the console does with it (a platform's member-joined event, likewise)
    with d.session() as s:
        conv = s.scalar(select(Conversation).where(Conversation.name == "tenders-aero"))
        assert conv is not None
        thomas = s.scalar(select(Person).where(Person.handle == "thomas"))
        assert s.scalar(select(ConversationMember.id).where(ConversationMember.conversation_id == conv.id,
                                                            ConversationMember.person_id == thomas.id))
        assert s.scalar(select(SpaceRequest.status)) == "done"
    # told it is done, and welcomed to the new channel with the purpose it was requested for
    assert pings(d, "thomas") == ["requests.notify.approved", "requests.notify.done", "welcome.dm"]
    with d.session() as s:
        welcome = s.scalar(select(Notification.params).where(Notification.key == "welcome.dm"))
    assert welcome["purpose"] == "Answer aeronautics tenders together"
    assert audit(d) == ["request.approved", "request.done"]
    assert keys(d.say("alice", "dm", "request approve 1")) == ["requests.already_done"]
    assert "tenders-aero" in everything(d.say("thomas", "dm", "requests"))


def test_access_to_a_private_channel_goes_to_its_people_or_the_admins_and_decline_tells_why(d: Driver) -> None:
    filed = outbound(d.say("lucas", "dm", "request access #direction to prepare the board deck"), "requests.filed")
    assert "Camille" in filed.reply.text  # #direction has no référent nor animator: the admins
    assert keys(d.say("lucas", "dm", "request access #direction")) == ["requests.already_requested"]
    assert keys(d.say("sophie", "dm", "request decline 1 no")) == ["requests.not_found"]
    assert keys(d.say("camille", "dm", "request decline 1")) == ["requests.decline_form"]
    assert keys(d.say("camille", "dm", "request decline 1 Board material stays with the board")) == ["requests.declined"]
    assert keys(d.say("camille", "dm", "request approve 1")) == ["requests.already_declined"]
    assert pings(d, "lucas") == ["requests.notify.declined"]
    assert audit(d) == ["request.declined"]
    # access to #sales goes to its référent and animator
    filed = outbound(d.say("emma", "dm", "request access #sales"), "requests.filed")
    assert "Julien" in filed.reply.text and "Sophie" in filed.reply.text
    effects = d.say("julien", "dm", "request approve 2")
    [change] = changes(effects)
    assert change.action == "invite" and change.channel.id == "sales" and [p.id for p in change.people] == ["emma"]
    assert keys(d.say("sophie", "dm", "request approve 2")) == ["requests.already_approved"]


def test_bad_input(d: Driver) -> None:
    assert keys(d.say("thomas", "dm", "request channel")) == ["requests.form"]
    assert keys(d.say("thomas", "dm", 'request channel #sales "more sales"')) == ["requests.channel_exists"]
    assert keys(d.say("thomas", "dm", 'request channel #Tenders.Aero "tenders"')) == ["requests.name_invalid_try"]
    assert "#tenders-aero" in everything(d.say("thomas", "dm", 'request channel #Tenders.Aero "tenders"'))
    assert keys(d.say("thomas", "dm", 'request channel #### "tenders"')) == ["requests.name_invalid"]
    assert keys(d.say("thomas", "dm", "request channel #tenders-aero")) == ["requests.purpose_required"]
    assert keys(d.say("thomas", "dm", "request access #nowhere")) == ["error.unknown_channel"]
    assert keys(d.say("thomas", "dm", "request access #general")) == ["requests.already_member"]
    assert keys(d.say("thomas", "dm", "request approve 7")) == ["requests.not_found"]
    assert keys(d.say("thomas", "dm", 'request channel #tenders-aero "tenders"')) == ["requests.filed"]
    assert keys(d.say("thomas", "dm", 'request channel #tenders-aero "tenders again"')) == ["requests.already_requested"]


@pytest.fixture
def slack(bot: Bot) -> Iterator[SlackHarness]:
    h = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    yield h
    h.close()
    assert h.server.mock.violations == []


def test_slack_creates_and_invites_through_the_web_api(slack: SlackHarness) -> None:
    bot, mock = slack.bot, slack.server.mock
    sender = slack.adapter.sender
    db = slack.bot.services.db
    create = SpaceChange("create", ConversationRef("slack", TEAM, "", "private", name="tenders-aero"),
                         people=(USER("thomas"),), purpose="Aeronautics tenders", report_to=USER("sophie"),
                         failed_key="requests.platform_failed", manual_key="requests.manual.create",
                         params={"id": 1, "name": "tenders-aero", "author": "Thomas", "purpose": "x", "privacy": "private"})
    sender.deliver([create])
    [created] = mock.of("conversations.create")
    assert created.args["name"] == "tenders-aero" and str(created.args["is_private"]).lower() in ("1", "true")
    [invited] = mock.of("conversations.invite")
    new_id = invited.args["channel"]
    assert invited.args["users"] == user_id("thomas") and mock.channels[new_id]["name"] == "tenders-aero"
    assert mock.of("conversations.setPurpose")[0].args["purpose"] == "Aeronautics tenders"
    with db.session(TEAM) as s:  # the core heard that thomas joined the new channel
        conv = s.scalar(select(Conversation).where(Conversation.external_id == new_id))
        assert conv is not None and conv.kind == "private" and conv.name == "tenders-aero"
    # the same name again: Slack refuses, the approver is told in their language
    posts = len(mock.of("chat.postMessage"))
    sender.deliver([create])
    dms = mock.of("chat.postMessage")[posts:]
    assert len(dms) == 1 and dms[0].args["channel"] == user_id("sophie") and "name_taken" in dms[0].args["text"]
    # access: an invitation to an existing channel
    invite = SpaceChange("invite", SLACK_REF, people=(USER("emma"),), report_to=USER("julien"),
                         failed_key="requests.platform_failed", params={"id": 2, "name": "sales", "author": "Emma"})
    sender.deliver([invite])
    assert mock.of("conversations.invite")[-1].args == {"channel": channel_id("sales"), "users": user_id("emma")}
    assert bot is slack.bot


SLACK_REF = ConversationRef("slack", TEAM, channel_id("sales"), "public", name="sales")


def USER(handle: str) -> UserRef:  # noqa: N802
    return UserRef("slack", TEAM, user_id(handle))


def _press(slack: SlackHarness, who: str, value: str) -> None:
    """`who` clicks a button carrying `value` in their DM with the bot (a block_actions payload)."""
    server = slack.server
    click = {"type": "block_actions", "team": {"id": TEAM, "domain": "demo"}, "api_app_id": "A0CAUSETTE", "token": "legacy",
             "user": {"id": user_id(who), "username": who, "team_id": TEAM}, "trigger_id": f"{who}.{server.next_ts()}",
             "response_url": server.mock.response_url(f"press-{who}"), "channel": {"id": "D" + who.upper(), "name": "directmessage"},
             "container": {"type": "message", "message_ts": "1763000000.000300"},
             "message": {"ts": "1763000000.000300", "text": "card"},
             "actions": [{"type": "button", "action_id": "causette_action:0", "block_id": "b", "value": value,
                         "action_ts": server.next_ts()}]}
    assert server.post_interactive(click).status == 200
    server.drain()


def test_slack_access_request_approved_by_its_button_invites_the_requester(slack: SlackHarness) -> None:
    """End to end on Slack: emma asks for #sales; julien's grouped DM carries the approve
    button; his click makes the bot call conversations.invite (the mock checks it against
    Slack's spec); the join settles the request and emma is told. Another person's click and
    a second click invite no one."""
    from tests.scenarios import Step

    mock, db = slack.server.mock, slack.bot.services.db
    [seen] = slack.run_step(Step("emma", "dm", "request access #sales to answer the Airbus tender", expect=("requests.filed",)))
    assert seen.key == "requests.filed"
    slack._advance("+30m")  # the grouped DMs go out
    dm = [c for c in mock.of("chat.postMessage") if c.args.get("channel") in (user_id("julien"), "DJULIEN")]
    assert dm, [c.args.get("channel") for c in mock.of("chat.postMessage")]
    buttons = [e for b in dm[-1].args.get("blocks") or [] for e in b.get("elements", []) if e.get("type") == "button"]
    approve = next(b["value"] for b in buttons if b["value"].startswith("request approve"))
    assert approve == "request approve 1"
    _press(slack, "hugo", approve)  # someone else pressing julien's button (a forwarded value): nothing happens
    assert mock.of("conversations.invite") == []
    _press(slack, "julien", approve)
    [invited] = mock.of("conversations.invite")
    assert invited.args == {"channel": channel_id("sales"), "users": user_id("emma")}
    _press(slack, "sophie", approve)  # the other référent, too late
    assert len(mock.of("conversations.invite")) == 1
    with db.session(TEAM) as s:
        assert s.scalar(select(SpaceRequest.status)) == "done"
        emma = s.scalar(select(Person).where(Person.handle == "emma"))
        sales = s.scalar(select(Conversation).where(Conversation.external_id == channel_id("sales")))
        assert s.scalar(select(ConversationMember.id).where(ConversationMember.person_id == emma.id,
                                                            ConversationMember.conversation_id == sales.id))
        told = list(s.scalars(select(Notification.key).where(Notification.person_id == emma.id).order_by(Notification.id)))
        actions = list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert told[:2] == ["requests.notify.approved", "requests.notify.done"]
    assert actions == ["request.approved", "request.done"]
