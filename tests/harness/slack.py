"""The Slack harness: the real Causette aiohttp server with the real Bolt app on loopback,
fed signed requests, answering into a local mock of Slack's Web API.

`SlackServer` starts everything (tests and the benchmark use it); `SlackHarness` plays
scenario steps: a slash command in a channel, a DM, or a plain channel message (with
`@causette` it is delivered as Slack does: an `app_mention` plus a `message` event).
It reports, for every Outbound the core produced, its prompt key and the plain text of
what was actually posted to the mock API: one post per reply, or the step fails.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar
from urllib.parse import urlencode

from sqlalchemy import select

from adapters.console.seed import seed_demo
from adapters.server import Outbox, build_app
from adapters.slack.runtime import RUNTIME_KEY
from bot.core import Bot
from bot.types import Effect, Event, Outbound
from store.models.core import Conversation, Person
from tests.harness import advance
from tests.scenarios import Seen, Step
from tests.slack_mock import Call, LoopThread, SlackMock

TEAM = "T0DEMO"
SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
BOT_USER = "UCAUSETTE"
CLIENT_ID = "1111.2222"
_MENTION = re.compile(r"(?<![\w@<])@([\w.\-]+)")
_CHANNEL = re.compile(r"(?<![\w&/#<|])#([\w\-]+)")
_SLACK_TOKEN = re.compile(r"<([@#!])([^|>]+)(?:\|[^>]*)?>")
REPLY_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url", "views.open")


def user_id(handle: str) -> str:
    return "U" + handle.upper()


def channel_id(name: str) -> str:
    return "C" + name.upper()


def sign(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class HttpResult:
    status: int
    body: bytes
    seconds: float


class SlackServer:
    """Causette's server (real aiohttp + Bolt) and the mock Web API, on loopback."""

    def __init__(self, bot: Bot, spec: Path, *, pace_seconds: float = 0.0, oauth: bool = False, socket_mode: bool = False) -> None:
        self.bot = bot
        settings = bot.services.settings
        settings.slack_signing_secret = SECRET
        settings.slack_bot_token = "" if oauth else BOT_TOKEN
        settings.slack_app_token = "xapp-1-test" if socket_mode else ""
        if oauth:  # multi-workspace: tokens come from the installation store
            settings.slack_client_id, settings.slack_client_secret = CLIENT_ID, "client-secret"
        self.loop = LoopThread()
        self.mock = SlackMock(spec, team=TEAM, bot_user=BOT_USER)
        self.loop.run(self.mock.start())
        settings.slack_api_url = self.mock.api_url
        self.outbox = Outbox()
        self.app = build_app(bot, settings, self.outbox)
        self.runtime = self.app[RUNTIME_KEY]
        self.adapter = self.runtime.adapter
        self.adapter.sender.pacer.interval = pace_seconds
        self.port = self.loop.run(self._start_app())
        self._conn: http.client.HTTPConnection | None = None

    async def _start_app(self) -> int:
        from aiohttp import web

        self._runner = web.AppRunner(self.app, access_log=None)  # type: ignore[arg-type]
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.loop.run(self._runner.cleanup())
        self.loop.run(self.mock.stop())
        self.loop.stop()

    # HTTP ----------------------------------------------------------------------------
    def post(self, body: bytes, content_type: str, *, timestamp: int | None = None, signature: str | None = None,
             headers: Mapping[str, str] | None = None, path: str = "/slack/events") -> HttpResult:
        ts = int(time.time()) if timestamp is None else timestamp
        all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts),
                       "X-Slack-Signature": signature or sign(body, ts), **(headers or {})}
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            started = time.perf_counter()
            try:
                self._conn.request("POST", path, body=body, headers=all_headers)
                resp = self._conn.getresponse()
                data = resp.read()
                return HttpResult(resp.status, data, time.perf_counter() - started)
            except (http.client.HTTPException, ConnectionError):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post_form(self, fields: Mapping[str, str], **kw: Any) -> HttpResult:
        return self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded", **kw)

    def post_json(self, payload: Mapping[str, Any], **kw: Any) -> HttpResult:
        return self.post(json.dumps(payload).encode(), "application/json", **kw)

    def post_interactive(self, payload: Mapping[str, Any], **kw: Any) -> HttpResult:
        return self.post_form({"payload": json.dumps(payload)}, **kw)

    def drain(self) -> None:
        self.loop.run(self.adapter.drain())

    # Payloads ------------------------------------------------------------------------
    _ids = itertools.count(1)

    def command_fields(self, user: str, channel: str, text: str, *, channel_name: str = "", user_name: str = "") -> dict[str, str]:
        n = next(self._ids)
        return {"token": "legacy", "team_id": TEAM, "team_domain": "demo", "channel_id": channel,
                "channel_name": channel_name or channel.lower(), "user_id": user, "user_name": user_name or user.lower(),
                "command": self.bot.services.settings.command_name, "text": text, "api_app_id": "A0CAUSETTE",
                "response_url": self.mock.response_url(f"cmd{n}"), "trigger_id": f"{n}.trigger"}

    def event_payload(self, event: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
        n = next(self._ids)
        return {"token": "legacy", "team_id": TEAM, "api_app_id": "A0CAUSETTE", "type": "event_callback",
                "event_id": event_id or f"Ev{n:08d}", "event_time": int(time.time()), "event": dict(event),
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]}

    def next_ts(self) -> str:
        now = self.bot.services.clock.now().timestamp()
        return f"{int(now)}.{next(self._ids):06d}"


def seed_people(bot: Bot, tenant: str = TEAM) -> None:
    """The demo's people and public channels under Slack ids, without the demo history:
    a cheap cast for tests that need known people but not the indexed past."""
    from store import people as people_store
    from store.demo import CHANNELS, demo_people

    now = bot.services.clock.now()
    with bot.services.db.session(tenant) as s:
        people_store.ensure_workspace(s, tenant, "slack", bot.services.settings.default_locale)
        for p in demo_people():
            s.add(Person(external_id=user_id(p.handle), handle=p.handle, display_name=p.name, title=p.title,
                         department=p.department, site=p.site, tz=p.tz, languages=p.languages,
                         locale="fr" if p.languages.startswith("fr") else "en", created_at=now, updated_at=now))
        s.add(Person(external_id=BOT_USER, handle="causette", display_name="Causette", is_bot=True, created_at=now, updated_at=now))
        for name, kind, lang in CHANNELS:
            s.add(Conversation(external_id=channel_id(name), name=name, kind=kind, language=lang, created_at=now))


E = TypeVar("E", bound=Event)


def record_events(server: SlackServer, kind: type[E] = Event) -> list[E]:  # type: ignore[assignment]
    """Every neutral event of `kind` the adapter hands to the core from now on, in order
    (`server.adapter.handle` is wrapped; its keyword arguments pass through)."""
    seen: list[E] = []
    inner = server.adapter.handle

    def recording(event: Event, **kwargs: Any) -> list[Effect]:
        if isinstance(event, kind):
            seen.append(event)
        return inner(event, **kwargs)

    server.adapter.handle = recording  # type: ignore[method-assign]
    return seen


def slack_plain(text: str) -> str:
    """What a person reads: mentions as @handle, channels as #name, entities unescaped."""
    def token(m: re.Match[str]) -> str:
        kind, ident = m.group(1), m.group(2)
        if kind == "@":
            return "@" + (ident[1:].lower() if ident.startswith("U") else ident)
        if kind == "#":
            return "#" + (ident[1:].lower() if ident.startswith("C") else ident)
        return "@" + ident
    return _SLACK_TOKEN.sub(token, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _block_texts(blocks: Any) -> list[str]:
    out: list[str] = []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for b in blocks or []:
        if "text" in b and isinstance(b["text"], dict):
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])]
        for e in b.get("elements", []):
            if e.get("type") == "button":
                out.append(f"{e['text']['text']} {e.get('value', '')}")
            elif "text" in e:
                out.append(e["text"] if isinstance(e["text"], str) else e["text"].get("text", ""))
        if b.get("type") == "input":
            out.append(b["label"]["text"])
    return out


def is_commented_upload(call: Call) -> bool:
    """A file shared with the reply's text as its comment: the reply's one message (a chart)."""
    return call.method == "files.completeUploadExternal" and bool(call.args.get("initial_comment"))


def rendered_text(call: Call) -> str:
    args = call.args
    if is_commented_upload(call):
        return slack_plain(str(args["initial_comment"]))
    if call.method == "views.open":
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        parts = [view["title"]["text"], *_block_texts(view.get("blocks"))]
    else:
        parts = [str(args.get("text", "")), *_block_texts(args.get("blocks"))]
    return slack_plain("\n".join(p for p in parts if p))


class SlackHarness:
    platform = "slack"

    def __init__(self, bot: Bot, spec: Path) -> None:
        self.bot = bot
        seed_demo(bot, tenant=TEAM, platform="slack", user_id=user_id, channel_id=channel_id)
        self.server = SlackServer(bot, spec)
        self.adapter = self.server.adapter
        self.recorded: list[Outbound] = []
        inner = self.adapter.handle

        def recording(event: Event) -> list[Effect]:
            effects = inner(event)
            self.recorded += [e for e in effects if isinstance(e, Outbound)]
            return effects

        self.adapter.handle = recording  # type: ignore[method-assign]
        with bot.services.db.session(TEAM) as s:
            self.handles = {p.handle for p in s.scalars(select(Person))}
            self.kinds = {c.name: c.kind for c in s.scalars(select(Conversation).where(Conversation.kind != "dm"))}
        self.channels = set(self.kinds)
        for name, kind in self.kinds.items():
            self.server.mock.channels[channel_id(name)] = {"id": channel_id(name), "name": name, "is_private": kind == "private"}

    def close(self) -> None:
        self.server.close()

    def _slack_text(self, text: str, *, labelled: bool) -> str:
        def person(m: re.Match[str]) -> str:
            handle = m.group(1).lower()
            if handle not in self.handles:
                return m.group(0)
            return f"<@{user_id(handle)}|{handle}>" if labelled else f"<@{user_id(handle)}>"

        def channel(m: re.Match[str]) -> str:
            name = m.group(1).lower()
            return f"<#{channel_id(name)}|{name}>" if name in self.channels else m.group(0)

        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return _CHANNEL.sub(channel, _MENTION.sub(person, escaped))

    def _advance(self, spec: str) -> None:
        advance(self.bot, spec, self.server.outbox.send)
        self.server.drain()

    def run_step(self, step: Step) -> list[Seen]:
        if step.advance:
            self._advance(step.advance)
        self.recorded = []
        mock = self.server.mock
        first_call = len(mock.calls)
        uid = user_id(step.user)
        if step.where == "dm":
            event = {"type": "message", "channel": "D" + step.user.upper(), "channel_type": "im", "user": uid,
                     "text": self._slack_text(step.text, labelled=False), "ts": self.server.next_ts()}
            result = self.server.post_json(self.server.event_payload(event))
            assert result.status == 200, result
        elif step.command:
            name = step.where.lstrip("#")
            fields = self.server.command_fields(uid, channel_id(name), self._slack_text(step.text, labelled=True),
                                                channel_name=name, user_name=step.user)
            result = self.server.post_form(fields)
            assert result.status == 200, result
        else:
            self._channel_message(step)
        self.server.drain()
        calls = [c for c in mock.calls[first_call:] if c.method in REPLY_METHODS or is_commented_upload(c)]
        assert not mock.violations, mock.violations
        texts = [rendered_text(c) for c in calls]
        keys = [o.reply.key for o in self.recorded]
        assert len(texts) == len(keys), f"{step}: {len(keys)} replies {keys} but {len(texts)} posts: {texts}"
        return [Seen(key, text) for key, text in zip(keys, texts)]

    def _channel_message(self, step: Step) -> None:
        name = step.where.lstrip("#")
        text = self._slack_text(step.text, labelled=False)
        mentioned = bool(re.search(r"<@" + BOT_USER + r"\b", text)) or bool(re.search(r"(?<![\w@])@causette\b", step.text, re.I))
        text = re.sub(r"(?<![\w@])@causette\b", f"<@{BOT_USER}>", text, flags=re.I)
        base = {"channel": channel_id(name), "user": user_id(step.user), "text": text, "ts": self.server.next_ts()}
        channel_type = {"private": "group", "group": "mpim"}.get(self.kinds.get(name, "public"), "channel")
        deliveries = [{"type": "message", "channel_type": channel_type, **base}]
        if mentioned:  # Slack sends both for one mention, in no guaranteed order
            deliveries.insert(0, {"type": "app_mention", **base})
        for event in deliveries:
            result = self.server.post_json(self.server.event_payload(event))
            assert result.status == 200, result
