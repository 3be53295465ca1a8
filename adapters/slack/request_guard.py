"""Slack's front door: what an HTTP request must be before Bolt sees it.

In this order, each step cheap and each refusal one short log line (never the body, never a
traceback):
1. the body is at most `MAX_BODY_BYTES`, counted while it is read (413);
2. the signature is Slack's: `X-Slack-Request-Timestamp` is a plain number of seconds
   within five minutes of now, `X-Slack-Signature` is `v0=` + the HMAC-SHA256 of
   `v0:<timestamp>:<body bytes>` with the signing secret (401);
3. the body is what Slack sends: UTF-8, a JSON object with a string `type` (Events API), or a
   form that is either an interactive payload (a `payload` FIELD holding such a JSON object)
   or a slash command (400).

Bolt then gets a request it does not re-parse (`GuardedBoltRequest`): its `parse_body`
takes any form body containing the text "payload" for an interactive payload, so
`/causette ask how do I validate a JSON payload?` would be dropped with a 404.
Bolt's own signature check stays on as a second line (`QuietRequestVerification`), minus the
body it logs at INFO on every refusal.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any, Awaitable, Callable, Mapping, Sequence
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.request_verification.async_request_verification import AsyncRequestVerification
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger("adapters.slack")

MAX_BODY_BYTES = 1024 * 1024
"""Slack's payloads are far smaller (a message is at most 40,000 characters; a message_changed
event carries two of them); 1 MiB is also aiohttp's default limit."""
MAX_AGE_SECONDS = 60 * 5
"""Slack's advice and Bolt's window: older or later timestamps are refused (replays)."""
MAX_FORM_FIELDS = 100  # a slash command has about 13, an interactive payload 1

_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: no sign, exponent, space or other script
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
_OBJECT_OR_ID = ("team", "user", "channel", "enterprise")
_OBJECTS = ("event", "view", "message", "container")
_LISTS_OF_OBJECTS = ("authorizations", "actions")


class Refused(Exception):
    """A request answered by the front door itself; `reason` is a fixed text of ours."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused as soon as it is known to be over `limit` (declared or received)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def signature_problem(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                      now: float) -> str | None:
    """Why this request is not signed by Slack, or None when it is."""
    if not timestamp or not signature:
        return "signature headers missing"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "timestamp is not a number"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "timestamp too old or in the future"
    if not _SIGNATURE.fullmatch(signature):
        return "signature malformed"
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest("v0=" + expected, signature):
        return "signature mismatch"
    return None


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, f"{what} is not a JSON object")
    return value


def _check_shape(body: Mapping[str, Any]) -> None:
    """The fields Bolt reads before any listener runs have the types Slack sends."""
    if not isinstance(body.get("type"), str):
        raise Refused(400, "payload has no type")
    if body["type"] == "event_callback" and not isinstance(body.get("event"), dict):
        raise Refused(400, "event_callback without an event")
    for key in _OBJECT_OR_ID:
        if body.get(key) is not None and not isinstance(body[key], (dict, str)):
            raise Refused(400, f"malformed {key}")
    for key in _OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise Refused(400, f"malformed {key}")
    for key in _LISTS_OF_OBJECTS:
        value = body.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise Refused(400, f"malformed {key}")
    event = body.get("event")
    if event is not None and not isinstance(event.get("type"), str):
        raise Refused(400, "event has no type")


def parse_body(raw: bytes, content_type: str) -> tuple[str, dict[str, Any]]:
    """(text, parsed body) of a verified request, the way Slack means it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == JSON_TYPE:
        body = _json_object(text, "body")
    elif mime == FORM_TYPE:
        try:
            fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
        except ValueError:
            raise Refused(400, "too many form fields") from None
        if "payload" not in fields:
            if "command" in fields or fields.get("ssl_check") == "1":
                return text, fields
            raise Refused(400, "form is neither a command nor an interactive payload")
        body = _json_object(fields["payload"], "payload field")
    else:
        raise Refused(400, "unsupported content type")
    _check_shape(body)
    return text, body


class GuardedBoltRequest(AsyncBoltRequest):
    """An HTTP-mode Bolt request whose body the front door parsed: Bolt keeps the raw text (for
    its own signature check) but never runs its `parse_body` on it."""

    def __init__(self, *, raw_body: str, body: dict[str, Any], query: Any = None, headers: Any = None,
                 context: dict[str, Any] | None = None) -> None:
        super().__init__(body="", query=query, headers=headers, context=context)
        self.raw_body = raw_body
        self.body = body
        self.context = build_async_context(AsyncBoltContext(context or {}), body)

    def to_copyable(self) -> "GuardedBoltRequest":
        return GuardedBoltRequest(raw_body=self.raw_body, body=self.body, query=self.query, headers=self.headers,
                                  context=self.context.to_copyable())


def _first(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = headers.get(name) or [None]
    return values[0]


class QuietRequestVerification(AsyncRequestVerification):
    """Bolt's signature middleware with the front door's rules: a timestamp that is not a
    number is refused (Bolt's `int()` raises, which became a 200), and a refusal logs one
    short line instead of the whole body."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:  # noqa: A002 - Bolt's name
        if self._can_skip(req.mode, req.body):
            return await next()
        problem = signature_problem(self._signing_secret, req.raw_body.encode("utf-8", "surrogatepass"),
                                    _first(req.headers, "x-slack-request-timestamp"),
                                    _first(req.headers, "x-slack-signature"), time.time())
        if problem is None:
            return await next()
        log.warning("slack: 401 from Bolt's check (%s)", problem)
        return self._build_error_response()


async def admit_body(request: web.Request, signing_secret: str) -> tuple[str, dict[str, Any]]:
    """(text, parsed body) of this HTTP request once it passed steps 1 to 3, or `Refused`
    (already logged in one line)."""
    size = request.content_length
    try:
        raw = await read_body(request)
        size = len(raw)
        headers = request.headers
        problem = signature_problem(signing_secret, raw, headers.get("X-Slack-Request-Timestamp"),
                                    headers.get("X-Slack-Signature"), time.time())
        if problem is not None:
            raise Refused(401, problem)
        return parse_body(raw, headers.get("Content-Type", ""))
    except Refused as refusal:
        _log_refusal(refusal, size, request)
        raise


def bolt_request(request: web.Request, text: str, body: dict[str, Any]) -> GuardedBoltRequest:
    """The Bolt request of an admitted HTTP request, or `Refused` (logged)."""
    try:
        return GuardedBoltRequest(raw_body=text, body=body, query=request.query_string, headers=dict(request.headers))
    except Exception as exc:  # noqa: BLE001 - a shape _check_shape did not foresee
        refusal = Refused(400, f"payload Bolt cannot read ({type(exc).__name__})")
        _log_refusal(refusal, len(text), request)
        raise refusal from None


async def admit(request: web.Request, signing_secret: str) -> GuardedBoltRequest:
    """The Bolt request for this HTTP request, or `Refused` (already logged in one line)."""
    text, body = await admit_body(request, signing_secret)
    return bolt_request(request, text, body)


def _log_refusal(refusal: Refused, size: int | None, request: web.Request) -> None:
    log.warning("slack: %d %s (%s bytes from %s)", refusal.status, refusal.reason,
                "?" if size is None else size, request.remote)


def refusal_response(refusal: Refused) -> web.Response:
    text = {401: "invalid request", 413: "payload too large"}.get(refusal.status, "bad request")
    return web.Response(status=refusal.status, text=text)
