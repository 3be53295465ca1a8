"""The Slack harness: the real Causette aiohttp server with the real Bolt app on loopback,
fed signed requests, answering into a local mock of Slack's Web API.

`SlackServer` starts everything (tests and the benchmark use it); `SlackHarness` plays
scenario steps: a slash command in a channel, a DM, or a plain channel message (with
`@causette` it is delivered as Slack does: an `app_mention` plus a `message` event).
It reports, for every Outbound the core produced, its prompt key and the plain text of
what was actually posted to the mock API: one post per reply, or the step fails.

Buttons and forms (tests/scenarios `Step.press` / `Step.submit`) as Slack does them: a press
is a signed `block_actions` payload for a button found in what the mock received for that
person; a form is the modal `views.open` received, sent back as a signed `view_submission`
(its `private_metadata`, and `state.values` from the values it showed and the step's).
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


def _view(call: Call) -> dict[str, Any]:
    view = call.args.get("view") or {}
    return view if isinstance(view, dict) else json.loads(view)


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
        self.triggers: dict[str, str] = {}  # trigger_id → handle of who acted
        self.responders: dict[str, str] = {}  # response_url key → handle
        self.form_buttons: dict[str, tuple[int, str]] = {}  # handle → (call index, value) of a form's "open" button
        self.sent_views: set[int] = set()  # views.open calls (their index) whose modal was sent
        self.set_aside: set[int] = set()  # calls that are no step's replies (a form's opening click)
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
        if step.text:
            self._type(step)
        if step.press:
            self._press(step)
        if step.submit is not None:
            self._submit(step)
        calls = [c for i, c in enumerate(mock.calls) if i >= first_call and i not in self.set_aside
                 and (c.method in REPLY_METHODS or is_commented_upload(c))]
        assert not mock.violations, mock.violations
        texts = [rendered_text(c) for c in calls]
        keys = [o.reply.key for o in self.recorded]
        assert len(texts) == len(keys), f"{step}: {len(keys)} replies {keys} but {len(texts)} posts: {texts}"
        return [Seen(key, text) for key, text in zip(keys, texts)]

    # Buttons and forms ---------------------------------------------------------------
    def _reader(self, call: Call) -> str | None:
        """Who alone reads what `call` posted (a handle), None for a channel post, "?" for
        anything else (not a message)."""
        args = call.args
        if call.method in ("chat.postMessage", "chat.update") or is_commented_upload(call):
            channel = str(args.get("channel") or args.get("channel_id") or "")
            return channel[1:].lower() if channel[:1] in ("U", "D") else None
        if call.method == "chat.postEphemeral":
            return str(args.get("user", ""))[1:].lower()
        if call.method == "response_url":
            return self.responders.get(str(args.get("key", "")), "?")
        if call.method == "views.open":
            return self.triggers.get(str(args.get("trigger_id", "")), "?")
        return "?"

    def _shown_to(self, user: str) -> list[Call]:
        return [c for c in self.server.mock.calls if self._reader(c) in (None, user)]

    def _click(self, user: str, where: str, value: str, channel: str = "") -> None:
        """`user` clicks a button carrying `value`: a signed block_actions payload."""
        server = self.server
        n = next(server._ids)
        trigger, key = f"{n}.click.trigger", f"click{n}"
        self.triggers[trigger], self.responders[key] = user, user
        channel = channel or ("D" + user.upper() if where == "dm" else channel_id(where.lstrip("#")))
        ts = server.next_ts()
        click = {"type": "block_actions", "team": {"id": TEAM, "domain": "demo"}, "api_app_id": "A0CAUSETTE", "token": "legacy",
                 "user": {"id": user_id(user), "username": user, "team_id": TEAM}, "trigger_id": trigger,
                 "response_url": server.mock.response_url(key),
                 "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else channel[1:].lower()},
                 "container": {"type": "message", "message_ts": ts}, "message": {"ts": ts, "text": "card"},
                 "actions": [{"type": "button", "action_id": "causette_action:0", "block_id": "b", "value": value,
                              "action_ts": ts}]}
        result = server.post_interactive(click)
        assert result.status == 200, result
        server.drain()

    @staticmethod
    def _buttons(call: Call) -> list[str]:
        blocks = call.args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return [str(e.get("value", "")) for b in blocks for e in b.get("elements", []) if e.get("type") == "button"]

    def _press(self, step: Step) -> None:
        for call in reversed(self._shown_to(step.user)):
            value = next((v for v in self._buttons(call) if v.startswith(step.press)), None)
            if value is not None:
                channel = str(call.args.get("channel", ""))
                channel = "D" + channel[1:] if channel.startswith("U") else channel
                self._click(step.user, step.where, value, channel)
                return
        raise AssertionError(f"no button {step.press!r} was shown to {step.user} on Slack")

    def _submit(self, step: Step) -> None:
        """Send `step.user`'s latest modal not sent yet; a form that came as a message with its
        "open" button (answering a typed message) is opened first by clicking it, and that
        click's reply (the modal) is not one of the step's (its calls are set aside)."""
        mock = self.server.mock
        calls = list(mock.calls)
        modals = [i for i, c in enumerate(calls) if c.method == "views.open" and i not in self.sent_views
                  and self._reader(c) == step.user and _view(c).get("callback_id") == "causette_form"]
        latest = modals[-1] if modals else -1
        opener = self.form_buttons.get(step.user)
        if opener is not None and opener[0] > latest:
            recorded, start = list(self.recorded), len(mock.calls)
            self._click(step.user, step.where, opener[1])
            opened = [i for i in range(start, len(mock.calls)) if mock.calls[i].method == "views.open"]
            assert len(opened) == 1, f"the form's button opened {len(opened)} modals"
            del self.form_buttons[step.user]
            self.recorded = recorded  # that click's reply is the form itself, now a modal
            self.set_aside.update(range(start, len(mock.calls)))
            latest = opened[0]
        assert latest >= 0, f"no form was shown to {step.user} on Slack (or all were sent)"
        self.sent_views.add(latest)
        view_call = mock.calls[latest]
        view = _view(view_call)
        values = dict(step.submit or {})
        blocks = [b for b in view.get("blocks", []) if b.get("type") == "input"]
        unknown = set(values) - {b["block_id"] for b in blocks}
        assert not unknown, f"the modal has no field {unknown}"
        state: dict[str, Any] = {}
        for block in blocks:
            element, name = block["element"], block["block_id"]
            if element["type"] == "checkboxes":
                chosen = element.get("initial_options", [])
                if name in values:
                    chosen = element["options"][:1] if values[name].lower() in ("1", "true", "yes", "on") else []
                state[name] = {"value": {"type": "checkboxes", "selected_options": chosen}}
            elif element["type"] == "static_select":
                option = element.get("initial_option")
                if name in values:
                    option = next((o for o in element["options"] if o["value"] == values[name]), None)
                    assert option is not None, f"{values[name]!r} is not an option of {name}"
                state[name] = {"value": {"type": "static_select", "selected_option": option}}
            else:
                state[name] = {"value": {"type": "plain_text_input", "value": values.get(name, element.get("initial_value"))}}
        n = next(self.server._ids)
        payload = {"type": "view_submission", "team": {"id": TEAM, "domain": "demo"}, "api_app_id": "A0CAUSETTE",
                   "token": "legacy", "user": {"id": user_id(step.user), "username": step.user, "team_id": TEAM},
                   "trigger_id": f"{n}.view.trigger",
                   "view": {**view, "id": f"VH{n}", "hash": f"{n}.hash", "state": {"values": state}}}
        self.triggers[payload["trigger_id"]] = step.user
        result = self.server.post_interactive(payload)
        assert result.status == 200, result
        self.server.drain()

    def _type(self, step: Step) -> None:
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
            self.triggers[fields["trigger_id"]] = step.user
            self.responders[fields["response_url"].rsplit("/", 1)[-1]] = step.user
            result = self.server.post_form(fields)
            assert result.status == 200, result
        else:
            self._channel_message(step)
        start = len(self.server.mock.calls)
        self.server.drain()
        self._note_form_button(step.user, start)

    def _note_form_button(self, user: str, start: int) -> None:
        """A form answering a typed message comes as a message with a button that opens it:
        remember that button (the last one of the post), to click it when the form is sent."""
        forms = [o for o in self.recorded if o.reply.form is not None]
        if not forms:
            return
        for index in range(len(self.server.mock.calls) - 1, start - 1, -1):
            call = self.server.mock.calls[index]
            if call.method == "views.open":
                return
            if self._reader(call) in (None, user) and self._buttons(call):
                self.form_buttons[user] = (index, self._buttons(call)[-1])
                return

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
