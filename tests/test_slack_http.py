"""The real Bolt app behind the real aiohttp server on loopback, fed signed requests,
answering into the mock Web API (every call checked against Slack's OpenAPI spec)."""
from __future__ import annotations

import json
import threading
import time
from typing import Iterator

import pytest
from sqlalchemy import select

from bot.core import Bot
from bot.types import Effect, Event, IncomingMessage, MembersChanged, MessageDeleted, MessageEdited, ProfileUpdate, ReactionAdded
from store.models.core import Person
from tests.conftest import spec_file
from tests.harness.slack import BOT_USER, TEAM, SlackServer, channel_id, record_events, seed_people, sign, user_id


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield s
    s.close()
    assert s.mock.violations == [], "every Web API call must match Slack's spec"


@pytest.fixture
def events(server: SlackServer) -> list[Event]:
    """Every neutral event the adapter handed to the core."""
    return record_events(server)


def replies(server: SlackServer) -> list[str]:
    methods = ("chat.postMessage", "chat.postEphemeral", "response_url", "chat.update")
    return [json.dumps(c.args) for c in server.mock.calls if c.method in methods]


# Signatures ---------------------------------------------------------------------------
def test_forged_signature_and_stale_timestamp_get_401(server: SlackServer, events: list[Event]) -> None:
    fields = server.command_fields(user_id("thomas"), channel_id("general"), "help")
    forged = server.post_form(fields, signature="v0=" + "0" * 64)
    body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
    wrong_secret = server.post(body, "application/x-www-form-urlencoded", signature=sign(body, int(time.time()), "not-the-secret"))
    stale_ts = int(time.time()) - 301
    stale = server.post_form(fields, timestamp=stale_ts)
    assert (forged.status, wrong_secret.status, stale.status) == (401, 401, 401)
    ok = server.post_form(fields, timestamp=int(time.time()) - 60)
    server.drain()
    assert ok.status == 200
    assert len([e for e in events if isinstance(e, IncomingMessage)]) == 1, "only the genuine request reached the bot"


def test_unparsable_payload_is_4xx_never_5xx(server: SlackServer) -> None:
    garbage = server.post(b"{not json", "application/json")
    no_payload = server.post_form({"payload": "{broken"})
    assert 400 <= garbage.status < 500 and 400 <= no_payload.status < 500
    empty_event = server.post_json({"type": "event_callback", "team_id": TEAM, "event_id": "Ev1", "event": {"type": "message"}})
    server.drain()
    assert empty_event.status == 200


def test_payloads_nobody_listens_to_are_acked(server: SlackServer) -> None:
    base = {"team": {"id": TEAM}, "user": {"id": user_id("thomas")}, "token": "x", "trigger_id": "1.t"}
    for payload in ({**base, "type": "shortcut", "callback_id": "someone_elses"},
                    {**base, "type": "view_submission", "view": {"id": "V9", "callback_id": "old_modal", "state": {"values": {}}}},
                    {**base, "type": "block_actions", "actions": [{"action_id": "legacy", "value": "x", "type": "button"}]}):
        assert server.post_interactive(payload).status == 200
    assert server.post_json(server.event_payload({"type": "channel_rename", "channel": {"id": "C1"}})).status == 200


def test_url_verification_answers_the_challenge(server: SlackServer) -> None:
    result = server.post_json({"type": "url_verification", "challenge": "abc123", "token": "x"})
    assert result.status == 200 and b"abc123" in result.body


# The 3-second rule ----------------------------------------------------------------------
def test_ack_is_sent_while_the_handler_is_still_blocked(server: SlackServer) -> None:
    release = threading.Event()
    started = threading.Event()
    inner = server.adapter.handle

    def blocked(event: Event) -> list[Effect]:
        started.set()
        assert release.wait(10)
        return inner(event)

    server.adapter.handle = blocked  # type: ignore[method-assign]
    result = server.post_form(server.command_fields(user_id("thomas"), channel_id("general"), "help"))
    assert result.status == 200 and result.seconds < 1.0
    assert started.wait(5), "the handler runs after the ack"
    assert server.adapter.busy() and not replies(server), "acked while the handler is still blocked"
    release.set()
    server.drain()
    assert len(replies(server)) == 1


# Once and only once -----------------------------------------------------------------------
def _mention_event(text: str, ts: str, kind: str = "app_mention") -> dict[str, object]:
    event = {"type": kind, "channel": channel_id("general"), "user": user_id("thomas"), "text": text, "ts": ts}
    if kind == "message":
        event["channel_type"] = "channel"
    return event


def test_retry_arriving_while_the_first_delivery_runs_is_dropped(server: SlackServer, events: list[Event]) -> None:
    release = threading.Event()
    inner = server.adapter.handle
    server.adapter.handle = lambda e: (release.wait(10), inner(e))[1]  # type: ignore[method-assign]
    payload = server.event_payload(_mention_event(f"<@{BOT_USER}> help", server.next_ts()))
    first = server.post_json(payload)
    retry = server.post_json(payload, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status == retry.status == 200
    release.set()
    server.drain()
    late_retry = server.post_json(payload, headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    server.drain()
    assert late_retry.status == 200
    assert len(replies(server)) == 1


def test_app_mention_and_message_pair_is_handled_once(server: SlackServer, events: list[Event]) -> None:
    ts = server.next_ts()
    text = f"<@{BOT_USER}> help"
    for kind in ("message", "app_mention"):
        assert server.post_json(server.event_payload(_mention_event(text, ts, kind))).status == 200
    server.drain()
    handled = [e for e in events if isinstance(e, IncomingMessage)]
    assert len(handled) == 1 and handled[0].addressed and handled[0].text == "help"
    assert len(replies(server)) == 1


def test_two_workers_claim_one_event_once(server: SlackServer) -> None:
    claims = [server.adapter._claim(TEAM, "slack:event:EvSAME") for _ in range(3)]
    assert claims == [True, False, False]


# Escaping -----------------------------------------------------------------------------------
def test_user_text_cannot_ping(server: SlackServer) -> None:
    # What Slack sends for a typed "<!channel>" / "<@U123>" (escaped) and for "@channel" / "@here"
    # (should_escape): none of it may come back as a broadcast or a mention.
    text = "help &lt;!channel&gt; <!channel> <!here> &lt;@U123&gt; &lt;!subteam^S1&gt;"
    server.post_form(server.command_fields(user_id("thomas"), channel_id("general"), text))
    server.drain()
    [posted] = replies(server)
    body = json.loads(posted)
    rendered = body["text"] + json.dumps(body.get("blocks", []))
    for ping in ("<!channel>", "<!here>", "<@U123>", "<!subteam", "<!everyone>"):
        assert ping not in rendered
    assert "&lt;!channel&gt;" in rendered and "&lt;@U123&gt;" in rendered


# Events → neutral events ---------------------------------------------------------------------
def test_events_become_neutral_events(server: SlackServer, events: list[Event]) -> None:
    ch, thomas = channel_id("general"), user_id("thomas")
    ts = server.next_ts()
    deliveries = [
        {"type": "message", "channel": ch, "channel_type": "channel", "user": thomas, "ts": ts,
         "text": "Great work <@ULUCAS|lucas> on #kubernetes, see <https://x.org/a|the doc> in <#CSALES|sales>", "thread_ts": "1763000000.000100"},
        {"type": "message", "subtype": "message_changed", "channel": ch, "channel_type": "channel", "event_ts": server.next_ts(),
         "message": {"user": thomas, "ts": ts, "text": "edited #python", "edited": {"ts": server.next_ts()}},
         "previous_message": {"user": thomas, "ts": ts, "text": "before"}},
        {"type": "message", "subtype": "message_deleted", "channel": ch, "channel_type": "channel", "deleted_ts": ts, "event_ts": server.next_ts()},
        {"type": "reaction_added", "user": thomas, "reaction": "tada", "item": {"type": "message", "channel": ch, "ts": ts}},
        {"type": "reaction_removed", "user": thomas, "reaction": "tada", "item": {"type": "message", "channel": ch, "ts": ts}},
        {"type": "member_joined_channel", "user": BOT_USER, "channel": ch, "channel_type": "C", "team": TEAM},
        {"type": "member_left_channel", "user": thomas, "channel": ch, "channel_type": "C", "team": TEAM},
        {"type": "user_change", "user": {"id": thomas, "team_id": TEAM, "deleted": True, "tz": "Europe/Paris",
                                         "profile": {"real_name": "Thomas B", "title": "SRE", "email": "t@x.org"}}},
        {"type": "message", "channel": ch, "channel_type": "channel", "bot_id": "B999", "text": "a bot speaks", "ts": server.next_ts()},
        {"type": "message", "channel": ch, "channel_type": "channel", "user": BOT_USER, "text": "myself", "ts": server.next_ts()},
    ]
    for event in deliveries:
        assert server.post_json(server.event_payload(event)).status == 200
    server.drain()
    [profile] = [e for e in events if isinstance(e, ProfileUpdate)]
    events = [e for e in events if e is not profile]
    kinds = [type(e).__name__ for e in events]  # one channel's events keep their order
    assert kinds == ["IncomingMessage", "MessageEdited", "MessageDeleted", "ReactionAdded", "ReactionAdded",
                     "MembersChanged", "MembersChanged"]
    msg = events[0]
    assert isinstance(msg, IncomingMessage) and not msg.addressed and msg.thread_id == "1763000000.000100"
    assert msg.text == "Great work ⟦@ULUCAS⟧ on #kubernetes, see the doc (https://x.org/a) in ⟦#CSALES⟧"
    assert [u.id for u in msg.mentions] == ["ULUCAS"] and msg.conversation.tenant == TEAM
    edited, deleted, added, removed, joined, left = events[1:]
    assert isinstance(edited, MessageEdited) and edited.id == ts and edited.text == "edited #python"
    assert isinstance(deleted, MessageDeleted) and deleted.id == ts
    assert isinstance(added, ReactionAdded) and not added.removed and isinstance(removed, ReactionAdded) and removed.removed
    assert isinstance(joined, MembersChanged) and joined.bot_joined and isinstance(left, MembersChanged) and not left.bot_left
    assert isinstance(profile, ProfileUpdate) and profile.deactivated and profile.title == "SRE"


def test_first_sight_of_a_person_fetches_their_profile(server: SlackServer, events: list[Event]) -> None:
    server.mock.users["UNEWBIE"] = {"id": "UNEWBIE", "name": "zoe", "tz": "America/Montreal",
                                    "profile": {"real_name": "Zoé Roy", "display_name": "zoe", "title": "Designer"}}
    for _ in range(2):
        event = {"type": "message", "channel": "DNEWBIE", "channel_type": "im", "user": "UNEWBIE", "text": "help", "ts": server.next_ts()}
        server.post_json(server.event_payload(event))
        server.drain()
    assert len(server.mock.of("users.info")) == 1
    assert isinstance(events[0], ProfileUpdate) and events[0].title == "Designer" and events[0].tz == "America/Montreal"
    assert isinstance(events[1], IncomingMessage) and events[1].addressed and events[1].conversation.kind == "dm"
    with server.bot.services.db.session(TEAM) as s:
        person = s.scalar(select(Person).where(Person.external_id == "UNEWBIE"))
        assert person is not None and person.title == "Designer" and person.tz == "America/Montreal"


# Interactivity --------------------------------------------------------------------------------
def _interactive_base(server: SlackServer, kind: str) -> dict[str, object]:
    return {"type": kind, "team": {"id": TEAM, "domain": "demo"}, "user": {"id": user_id("thomas"), "username": "thomas", "team_id": TEAM},
            "api_app_id": "A0CAUSETTE", "token": "legacy", "trigger_id": "42.trigger", "response_url": server.mock.response_url("i1")}


def test_button_click_is_the_command_it_carries(server: SlackServer, events: list[Event]) -> None:
    payload = {**_interactive_base(server, "block_actions"), "channel": {"id": channel_id("general"), "name": "general"},
               "container": {"type": "message", "message_ts": "1763000000.000200"},
               "message": {"ts": "1763000000.000200", "text": "card"},
               "actions": [{"type": "button", "action_id": "causette_action:0", "block_id": "b", "value": "help",
                            "text": {"type": "plain_text", "text": "Help"}, "action_ts": "1"}]}
    assert server.post_interactive(payload).status == 200
    server.drain()
    [msg] = events
    assert isinstance(msg, IncomingMessage) and msg.via == "button" and msg.text == "help" and msg.addressed
    assert len(replies(server)) == 1


def test_message_shortcuts_carry_their_source(server: SlackServer, events: list[Event]) -> None:
    for callback, command in (("causette_ask", "ask"), ("causette_idea", "idea"), ("causette_suggest", "suggest")):
        payload = {**_interactive_base(server, "message_action"), "callback_id": callback,
                   "channel": {"id": channel_id("general"), "name": "general"}, "message_ts": "1763000000.000300",
                   "message": {"type": "message", "user": user_id("lucas"), "ts": "1763000000.000300",
                               "text": "How do we size &lt;pods&gt; for <@UEMMA|emma>?"}}
        assert server.post_interactive(payload).status == 200
        server.drain()
    asks = [e for e in events if isinstance(e, IncomingMessage)]
    assert [m.text for m in asks] == ["ask", "idea", "suggest"]
    for m in asks:
        assert m.via == "shortcut" and m.source_id == "1763000000.000300" and m.thread_id == "1763000000.000300"
        assert m.source_text == "How do we size <pods> for ⟦@UEMMA⟧?"
        assert m.source_permalink == "https://demo.slack.com/archives/CGENERAL/p1763000000000300"


def test_modal_submission_is_the_form_command(server: SlackServer, events: list[Event]) -> None:
    meta = json.dumps({"cmd": "help", "ch": channel_id("general"), "k": "public"})
    payload = {**_interactive_base(server, "view_submission"),
               "view": {"id": "V1", "type": "modal", "callback_id": "causette_form", "private_metadata": meta,
                        "state": {"values": {"topic": {"value": {"type": "plain_text_input", "value": "kubernetes"}},
                                             "anonymous": {"value": {"type": "checkboxes", "selected_options": [{"value": "true"}]}},
                                             "kind": {"value": {"type": "static_select", "selected_option": {"value": "b"}}}}}}}
    assert server.post_interactive(payload).status == 200
    server.drain()
    [msg] = events
    assert isinstance(msg, IncomingMessage) and msg.via == "form" and msg.text == "help"
    assert dict(msg.form_values or {}) == {"topic": "kubernetes", "anonymous": "true", "kind": "b"}
    assert msg.conversation.id == channel_id("general")


def test_app_home_is_published_and_profile_modal_opens(server: SlackServer) -> None:
    event = {"type": "app_home_opened", "user": user_id("sophie"), "channel": "DSOPHIE", "tab": "home"}
    assert server.post_json(server.event_payload(event)).status == 200
    server.drain()
    [publish] = server.mock.of("views.publish")
    view = publish.args["view"]
    assert publish.args["user_id"] == user_id("sophie") and view["type"] == "home"
    assert any(e.get("action_id") == "causette_profile_edit" for b in view["blocks"] for e in b.get("elements", []))
    click = {**_interactive_base(server, "block_actions"), "user": {"id": user_id("sophie"), "username": "sophie", "team_id": TEAM},
             "container": {"type": "view", "view_id": "V1"},
             "actions": [{"type": "button", "action_id": "causette_profile_edit", "block_id": "b", "value": "profile", "action_ts": "1"}]}
    assert server.post_interactive(click).status == 200
    server.drain()
    [opened] = server.mock.of("views.open")
    assert opened.args["trigger_id"] == "42.trigger" and opened.args["view"]["callback_id"] == "causette_profile"
    titles = {b["block_id"]: b["element"].get("initial_value", "") for b in opened.args["view"]["blocks"]}
    assert set(titles) == {"title", "department", "site", "tz", "languages"} and titles["title"]


def test_profile_modal_submission_becomes_profile_set_commands(server: SlackServer, events: list[Event]) -> None:
    values = {"title": {"value": {"type": "plain_text_input", "value": "Head of  SRE"}},
              "site": {"value": {"type": "plain_text_input", "value": ""}}}
    payload = {**_interactive_base(server, "view_submission"),
               "view": {"id": "V2", "type": "modal", "callback_id": "causette_profile", "private_metadata": "{}",
                        "state": {"values": values}}}
    assert server.post_interactive(payload).status == 200
    server.drain()
    assert [(m.text, m.via) for m in events if isinstance(m, IncomingMessage)] == [("profile set title Head of SRE", "form")]


def test_a_mention_in_a_thread_is_answered_in_the_thread(server: SlackServer) -> None:
    event = {**_mention_event(f"<@{BOT_USER}> blablabla", server.next_ts()), "thread_ts": "1763000000.000500"}
    server.post_json(server.event_payload(event))
    server.drain()
    [answer] = [c for c in server.mock.calls if c.method in ("chat.postEphemeral", "chat.postMessage")]
    assert answer.args["thread_ts"] == "1763000000.000500"


def test_a_failing_listener_still_answers_200(server: SlackServer) -> None:
    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom")

    server.adapter.submit = broken  # type: ignore[method-assign]
    event = server.post_json(server.event_payload(_mention_event(f"<@{BOT_USER}> help", server.next_ts())))
    command = server.post_form(server.command_fields(user_id("thomas"), channel_id("general"), "help"))
    assert event.status == 200 and command.status == 200


def test_a_command_typed_in_a_dm_between_two_people_answers_only_its_author(server: SlackServer) -> None:
    fields = server.command_fields(user_id("thomas"), "DTHOMASLUCAS", "help", channel_name="directmessage")
    assert server.post_form(fields).status == 200
    server.drain()
    [answer] = [c for c in server.mock.calls if c.method in ("response_url", "chat.postMessage", "chat.postEphemeral")]
    assert answer.method == "response_url" and answer.args["response_type"] == "ephemeral"
