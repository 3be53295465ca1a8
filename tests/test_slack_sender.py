"""Effects → Web API calls against the mock: DMs, ephemerals, threads, anchors, forms,
files, error hints, rate limits, the outbox and history backfill."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest

from adapters.slack.sender import Origin
from bot.core import Bot
from bot.types import ConversationRef, FetchHistory, Form, FormField, IncomingMessage, Outbound, Reply, UserRef
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackServer, channel_id, record_events, user_id

GENERAL = ConversationRef("slack", TEAM, channel_id("general"), "public")
THOMAS = UserRef("slack", TEAM, user_id("thomas"))


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield s
    s.close()
    assert s.mock.violations == []


def methods(server: SlackServer) -> list[str]:
    return [c.method for c in server.mock.calls if c.method != "auth.test"]


def test_dm_ephemeral_thread_and_public(server: SlackServer) -> None:
    send = server.adapter.sender.deliver
    send([Outbound(Reply(text="to you"), to=THOMAS),
          Outbound(Reply(text="just you"), to=GENERAL, private_for=THOMAS, thread_id="1763000000.000100"),
          Outbound(Reply(text="everyone"), to=GENERAL, thread_id="cmd-not-a-ts")])
    dm, eph, pub = server.mock.calls
    assert (dm.method, dm.args["channel"]) == ("chat.postMessage", user_id("thomas"))
    assert (eph.method, eph.args["user"], eph.args["thread_ts"]) == ("chat.postEphemeral", user_id("thomas"), "1763000000.000100")
    assert pub.method == "chat.postMessage" and "thread_ts" not in pub.args and pub.args["link_names"] is False


def test_anchor_updates_in_place(server: SlackServer) -> None:
    send = server.adapter.sender.deliver
    send([Outbound(Reply(text="idea 42: 1 vote"), to=GENERAL, anchor="idea:42")])
    send([Outbound(Reply(text="idea 42: 2 votes"), to=GENERAL, anchor="idea:42")])
    send([Outbound(Reply(text="digest"), to=THOMAS, anchor="digest:1")])
    send([Outbound(Reply(text="digest, updated"), to=THOMAS, anchor="digest:1")])
    post, update, dm_post, dm_update = server.mock.calls
    assert (post.method, update.method) == ("chat.postMessage", "chat.update")
    assert update.args["ts"] == server.mock.calls[0].args.get("ts", update.args["ts"]) and update.args["channel"] == channel_id("general")
    assert dm_update.method == "chat.update" and dm_update.args["channel"] == "DTHOMAS" and dm_post.args["channel"] == user_id("thomas")


def test_response_url_serves_the_command_then_chat_methods(server: SlackServer) -> None:
    origin = Origin(team=TEAM, user=user_id("thomas"), channel=GENERAL.id, response_url=server.mock.response_url("r1"))
    server.adapter.sender.deliver([Outbound(Reply(text=f"n°{i}"), to=GENERAL, private_for=THOMAS) for i in range(7)], origin)
    assert methods(server) == ["response_url"] * 5 + ["chat.postEphemeral"] * 2
    assert server.mock.calls[0].args["response_type"] == "ephemeral"


def test_an_outbound_response_url_is_used(server: SlackServer) -> None:
    server.adapter.sender.deliver([Outbound(Reply(text="later"), to=GENERAL, private_for=THOMAS,
                                            response_url=server.mock.response_url("late"))])
    [call] = server.mock.calls
    assert call.method == "response_url" and call.args["key"] == "late" and call.args["response_type"] == "ephemeral"


def test_not_in_channel_is_logged_and_the_person_gets_a_hint(server: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    server.mock.failures["chat.postMessage"] = ["not_in_channel"]
    origin = Origin(team=TEAM, user=user_id("thomas"), channel=GENERAL.id, response_url=server.mock.response_url("r2"))
    server.adapter.sender.deliver([Outbound(Reply(text="public answer"), to=GENERAL)], origin)
    assert methods(server) == ["chat.postMessage", "response_url", "response_url"]
    answer, hint = server.mock.calls[1].args, server.mock.calls[2].args
    assert answer["response_type"] == "in_channel" and answer["text"] == "public answer"
    assert hint["response_type"] == "ephemeral" and "/invite @Causette" in hint["text"]
    assert "not_in_channel" in caplog.text and "invited" in caplog.text


def test_missing_scope_without_response_url_hints_by_dm(server: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    server.mock.failures["chat.postEphemeral"] = ["missing_scope"]
    server.adapter.sender.deliver([Outbound(Reply(text="psst"), to=GENERAL, private_for=THOMAS)], Origin(team=TEAM, user=THOMAS.id))
    assert methods(server) == ["chat.postEphemeral", "chat.postMessage", "chat.postMessage"]
    assert all(c.args["channel"] == THOMAS.id for c in server.mock.calls[1:])
    assert "missing_scope (needs chat:write)" in caplog.text


def test_rate_limited_call_is_retried(server: SlackServer) -> None:
    server.mock.rate_limits["chat.postMessage"] = 1
    server.adapter.sender.deliver([Outbound(Reply(text="hello"), to=GENERAL)])
    assert methods(server) == ["chat.postMessage", "chat.postMessage"]


def test_form_opens_a_modal_with_a_fresh_trigger_else_a_button(server: SlackServer) -> None:
    form = Form(title="Idée", submit_command="idea submit", fields=(FormField("title", "Titre", required=True),))
    origin = Origin(team=TEAM, user=THOMAS.id, channel=GENERAL.id, trigger_id="9.trigger", command_text="idea new")
    effects = [Outbound(Reply(text="form", form=form), to=GENERAL, private_for=THOMAS)] * 2
    server.adapter.sender.deliver(effects, origin)
    opened, fallback = server.mock.calls
    assert opened.method == "views.open" and opened.args["trigger_id"] == "9.trigger"
    assert fallback.method == "chat.postEphemeral"
    assert fallback.args["blocks"][-1]["elements"][0]["value"] == "idea new", "the button re-runs the command (new trigger)"


def test_attachment_is_uploaded_privately(server: SlackServer) -> None:
    reply = Reply(text="your export", attachment=("export.json", b'{"a": 1}'))
    server.adapter.sender.deliver([Outbound(reply, to=GENERAL, private_for=THOMAS)])
    assert methods(server) == ["chat.postEphemeral", "conversations.open", "files.getUploadURLExternal", "upload",
                               "files.completeUploadExternal"]
    assert server.mock.of("files.completeUploadExternal")[0].args["channel_id"] == "DTHOMAS"


def test_outbox_routes_job_effects_to_slack(server: SlackServer) -> None:
    server.outbox.send([Outbound(Reply(text="your digest"), to=THOMAS)])
    assert methods(server) == ["chat.postMessage"]


def test_history_backfill_pages_and_reports_progress(server: SlackServer) -> None:
    seen = record_events(server)
    server.adapter.sender.handle = server.adapter.handle
    server.mock.history[GENERAL.id] = [
        {"type": "message", "user": user_id("lucas"), "text": f"message {i} #kubernetes", "ts": f"17630000{i:02d}.000100"} for i in range(5)
    ] + [{"type": "message", "bot_id": "B1", "text": "a bot", "ts": "1763000099.000100"}]
    server.adapter.sender.deliver([FetchHistory(GENERAL, since=datetime(2026, 11, 1, tzinfo=timezone.utc), requested_by=THOMAS)])
    server.drain()
    assert [m.text for m in seen if isinstance(m, IncomingMessage)] == [f"message {i} #kubernetes" for i in (1, 0, 3, 2, 4)]
    assert all(isinstance(m, IncomingMessage) and m.backfill and not m.addressed for m in seen)
    history = server.mock.of("conversations.history")
    assert [c.args.get("cursor") for c in history] == [None, "2", "4"]
    progress = [c for c in server.mock.calls if c.method in ("chat.postMessage", "chat.update")]
    assert progress[0].method == "chat.postMessage" and all(c.method == "chat.update" for c in progress[1:])
    assert "5" in progress[-1].args["text"] and len(progress) == 5
