"""Hostile requests at Slack's front door (/slack/events), sent over signed (or forged) HTTP
to the real aiohttp server and the real Bolt app.

What a caller must see: a forged or oddly signed request gets 401, an oversized one 413, a
signed but malformed one 400, never a 5xx; the log gets one short line per refusal, never the
body and never a traceback. And a slash command that merely contains the word "payload" gets
its normal answer (Bolt alone would take it for an interactive payload and answer 404).
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
from typing import Iterable, Iterator, Mapping
from urllib.parse import urlencode

import pytest

from bot.core import Bot
from bot.types import Event, IncomingMessage
from tests.conftest import spec_file
from tests.harness.slack import SECRET, TEAM, HttpResult, SlackServer, channel_id, record_events, seed_people, sign, user_id

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield s
    s.close()
    assert s.mock.violations == []


@pytest.fixture
def events(server: SlackServer) -> list[Event]:
    return record_events(server)


def signed_with(body: bytes, timestamp: str) -> str:
    """The signature Slack's scheme gives for any timestamp text (the harness's `sign` takes ints)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()


def raw_post(server: SlackServer, body: bytes | Iterable[bytes], headers: Mapping[str, str]) -> HttpResult:
    """A POST with exactly these headers (the harness always adds both signature headers);
    an iterable body goes out chunked, without Content-Length."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.perf_counter()
    try:
        chunked = not isinstance(body, bytes)
        raw_headers = {name: value.encode() for name, value in headers.items()}  # UTF-8, as a hostile client may
        conn.request("POST", "/slack/events", body=body, headers=raw_headers, encode_chunked=chunked)
        resp = conn.getresponse()
        return HttpResult(resp.status, resp.read(), time.perf_counter() - started)
    finally:
        conn.close()


def replies(server: SlackServer) -> list[str]:
    methods = ("chat.postMessage", "chat.postEphemeral", "response_url", "chat.update")
    return [json.dumps(c.args) for c in server.mock.calls if c.method in methods]


def front_door_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("adapters.slack", "slack_bolt", "aiohttp"))]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None and "Traceback" not in caplog.text, record.getMessage()


# 1. Signature headers that are not what Slack sends ------------------------------------------
@pytest.mark.parametrize("timestamp", ["abc", "1.7e9", "", "-5", "-1763000000", "9" * 40, "1" * 5000,
                                       " 1763000000", "１７６３００００００", "0x10", "1_763_000_000"])
def test_signature_timestamp_that_is_not_a_plain_number_gets_401(server: SlackServer, events: list[Event],
                                                                   caplog: pytest.LogCaptureFixture, timestamp: str) -> None:
    caplog.set_level(logging.DEBUG)
    body = urlencode(server.command_fields(user_id("thomas"), channel_id("general"), "help")).encode()
    result = raw_post(server, body, {"Content-Type": FORM, "X-Slack-Request-Timestamp": timestamp,
                                     "X-Slack-Signature": signed_with(body, timestamp)})
    server.drain()
    assert result.status == 401
    assert not events and not replies(server)
    assert_no_traceback(caplog)


def test_missing_or_malformed_signature_headers_get_401(server: SlackServer, events: list[Event],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = urlencode(server.command_fields(user_id("thomas"), channel_id("general"), "help")).encode()
    now = str(int(time.time()))
    good = signed_with(body, now)
    cases = [
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now},                       # no signature
        {"Content-Type": FORM, "X-Slack-Signature": good},                              # no timestamp
        {"Content-Type": FORM},                                                         # neither
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": ""},
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": good.upper()},
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": good[3:]},
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v1=" + good[3:]},
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "\xe9" * 64},
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": good + "00"},
    ]
    statuses = [raw_post(server, body, headers).status for headers in cases]
    server.drain()
    assert statuses == [401] * len(cases)
    assert not events and not replies(server)
    assert_no_traceback(caplog)
    genuine = raw_post(server, body, {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": good})
    server.drain()
    assert genuine.status == 200 and len(replies(server)) == 1


def test_timestamp_in_the_future_beyond_five_minutes_gets_401(server: SlackServer) -> None:
    fields = server.command_fields(user_id("thomas"), channel_id("general"), "help")
    assert server.post_form(fields, timestamp=int(time.time()) + 301).status == 401
    assert server.post_form(fields, timestamp=int(time.time()) + 60).status == 200


# 2. What a refusal costs in the log, and in memory -------------------------------------------
def test_forged_bodies_are_refused_with_one_short_line_and_never_logged(server: SlackServer,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "FORGED-BODY-MARKER"
    body = ("text=" + marker + "x" * 1_000_000).encode()
    for _ in range(5):
        assert server.post(body, FORM, signature="v0=" + "0" * 64).status == 401
    lines = front_door_lines(caplog)
    assert marker not in caplog.text
    assert len(lines) == 5, [r.getMessage()[:120] for r in lines]
    assert all(len(r.getMessage()) <= 300 for r in lines)
    assert len(caplog.text) < 5 * 400


def test_bolt_own_verification_no_longer_logs_the_body(server: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    """Bolt's check stays as a second line behind the front door (for any path that reaches
    Bolt directly); it must refuse without writing the body either."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    caplog.set_level(logging.DEBUG)
    body = "command=%2Fcausette&text=SECOND-LINE-MARKER"
    forged = {"content-type": FORM, "x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=" + "0" * 64}
    junk_ts = {**forged, "x-slack-request-timestamp": "1.7e9"}
    for headers in (forged, junk_ts):
        response = server.loop.run(server.runtime.bolt.async_dispatch(AsyncBoltRequest(body=body, headers=headers)))
        assert response.status == 401
    assert "SECOND-LINE-MARKER" not in caplog.text
    assert_no_traceback(caplog)


def test_oversized_bodies_get_413_before_being_read_whole(server: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    from adapters.slack.request_guard import MAX_BODY_BYTES

    big = b"text=" + b"x" * MAX_BODY_BYTES
    declared = server.post(big, FORM)  # even correctly signed
    chunks = (b"x" * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 2))
    chunked = raw_post(server, chunks, {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time())),
                                        "X-Slack-Signature": "v0=" + "0" * 64})
    assert (declared.status, chunked.status) == (413, 413)
    assert len(front_door_lines(caplog)) == 2 and len(caplog.text) < 1000
    fields = server.command_fields(user_id("thomas"), channel_id("general"), "help")
    assert server.post_form(fields).status == 200, "the server still answers after refusing"


# 3. Slash commands that contain the word "payload" --------------------------------------------
@pytest.mark.parametrize(("text", "channel"), [
    ("ask how do I validate a JSON payload?", "general"),
    ("skills add payload design", "general"),
    ("help", "payload-team"),
])
def test_command_mentioning_payload_gets_its_normal_answer(server: SlackServer, events: list[Event],
                                                           text: str, channel: str) -> None:
    fields = server.command_fields(user_id("thomas"), channel_id(channel), text, channel_name=channel)
    result = server.post_form(fields)
    server.drain()
    assert result.status == 200
    [message] = [e for e in events if isinstance(e, IncomingMessage)]
    assert message.text == text and message.addressed and message.via == "command"
    assert replies(server), "the command was answered"


def test_interactive_payload_field_is_still_an_interaction(server: SlackServer) -> None:
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": user_id("thomas")}, "token": "x",
               "trigger_id": "1.t", "actions": [{"action_id": "someone_elses", "value": "payload", "type": "button"}]}
    assert server.post_interactive(payload).status == 200


# 4. Signed but malformed bodies --------------------------------------------------------------
MALFORMED: list[tuple[str, bytes, str]] = [
    ("invalid JSON", b"{not json", JSON),
    ("JSON list", b"[1, 2]", JSON),
    ("JSON number", b"42", JSON),
    ("JSON string", b'"event_callback"', JSON),
    ("JSON null", b"null", JSON),
    ("no type", json.dumps({"team_id": TEAM, "event": {"type": "message"}}).encode(), JSON),
    ("type not a string", json.dumps({"type": 5}).encode(), JSON),
    ("event not an object", json.dumps({"type": "event_callback", "team_id": TEAM, "event": "message"}).encode(), JSON),
    ("authorizations not a list", json.dumps({"type": "event_callback", "team_id": TEAM, "authorizations": "xyz",
                                              "event": {"type": "message"}}).encode(), JSON),
    ("deeply nested JSON", b'{"type": "event_callback", "event": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", JSON),
    ("payload not JSON", b"payload=%7Bbroken", FORM),
    ("payload a JSON list", b"payload=%5B1%2C2%5D", FORM),
    ("payload without type", b"payload=%7B%22team%22%3A%7B%7D%7D", FORM),
    ("form neither command nor payload", b"foo=bar&baz=1", FORM),
    ("binary garbage as JSON", bytes(range(256)) * 4, JSON),
    ("binary garbage as form", b"\xff\xfe\x00payload=\x80\x81", FORM),
    ("empty body", b"", JSON),
    ("wrong content type", json.dumps({"type": "url_verification", "challenge": "c"}).encode(), "text/plain"),
    ("multipart", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    ("no content type", b'{"type": "url_verification", "challenge": "c"}', ""),
]


@pytest.mark.parametrize(("case", "body", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_signed_malformed_body_gets_400_and_one_log_line(server: SlackServer, events: list[Event],
                                                         caplog: pytest.LogCaptureFixture,
                                                         case: str, body: bytes, content_type: str) -> None:
    caplog.set_level(logging.DEBUG)
    ts = int(time.time())
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, ts)}
    if content_type:
        headers["Content-Type"] = content_type
    result = raw_post(server, body, headers)
    server.drain()
    assert result.status == 400, case
    assert_no_traceback(caplog)
    lines = front_door_lines(caplog)
    assert len(lines) == 1 and len(lines[0].getMessage()) <= 300, [r.getMessage()[:200] for r in lines]
    assert not events


@pytest.mark.parametrize(("case", "body", "content_type"), MALFORMED[:6], ids=[m[0] for m in MALFORMED[:6]])
def test_unsigned_malformed_body_gets_401(server: SlackServer, caplog: pytest.LogCaptureFixture,
                                          case: str, body: bytes, content_type: str) -> None:
    caplog.set_level(logging.DEBUG)
    result = server.post(body, content_type, signature="v0=" + "1" * 64)
    assert result.status == 401, case
    assert_no_traceback(caplog)


# 5. What Slack really sends still works --------------------------------------------------------
def test_url_verification_and_ssl_check_still_answer(server: SlackServer) -> None:
    challenge = server.post(json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode(),
                            "application/json; charset=utf-8")
    assert challenge.status == 200 and b"abc123" in challenge.body
    assert server.post_form({"ssl_check": "1", "token": "x"}).status == 200
