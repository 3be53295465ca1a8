"""A small local Slack Web API (loopback aiohttp server) for tests and the benchmark.

It records every call and checks it against Slack's own OpenAPI 2.0 spec
(`../shared/specs/slack-web-openapi-v2.json`): the method must exist, every argument
must be a documented parameter of that method with a value of the documented type,
and required parameters must be present. Messages are also checked against the Block
Kit limits of FACTS.md. Any mismatch is kept in `violations` (tests assert it is empty)
and answered `invalid_arguments`, as Slack would refuse it.

The 2020 spec predates the external-upload flow that replaced `files.upload` (retired
by Slack in 2025), so those two methods are described in `EXTRA_METHODS` from Slack's
method reference, and so are the arguments newer than the spec that Causette uses
(`EXTRA_ARGS`: message `metadata`, `include_all_metadata`).

Faults: `failures` answers Slack error codes (HTTP 200, `ok: false`), `rate_limits` answers
429s, `fail_http(method, status, times, retry_after=…)` answers HTTP 500/503/429… (with
`Retry-After`) a given number of times before the call does anything, `fail_after(method,
status or "reset", times)` lets the call take effect and then answers HTTP `status` or drops
the connection without an answer (the caller cannot tell what happened), and
`delays[method]` holds the answer that many seconds after the call took effect (a worker can
be killed while Slack "is answering").
The mock keeps the messages the bot posted per channel (`posts`, `visible(channel)`):
chat.update edits them in place, and conversations.history asked with
`include_all_metadata` lists them, newest first, with their metadata (the backfill
fixtures of `history` stay as they are for other calls); conversations.replies lists a
thread's. Files (`files`) go through the external-upload flow as on Slack: created by
files.getUploadURLExternal, filled by the upload, shown by files.completeUploadExternal, which
shares them into the channel as a message carrying the file (`files_in(channel)`) each time
it is called, even for a file already shared; files.info tells where a file is shared
(`shares`, `channels`/`groups`/`ims`). files.info and conversations.replies are checked against
the spec like every method; the spec's `shares` schema (generated from samples) admits no
channel key, so that answer follows Slack's method reference (`shares.public|private.<channel>`
→ a list of {ts, thread_ts, channel_name…}).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl

from aiohttp import web

EXTRA_METHODS: dict[str, dict[str, tuple[str, bool]]] = {
    # name: {param: (type, required)}
    "files.getUploadURLExternal": {"filename": ("string", True), "length": ("integer", True),
                                   "alt_txt": ("string", False), "snippet_type": ("string", False)},
    "apps.connections.open": {},  # Socket Mode (2021), called with the app-level token
    # alt_txt (the image's description for screen readers, ≤ 1,000 characters) belongs to the first
    # step only; completeUploadExternal takes the comment (or blocks, ignored beside a comment)
    "files.completeUploadExternal": {"files": ("string", True), "channel_id": ("string", False), "channels": ("string", False),
                                     "initial_comment": ("string", False), "thread_ts": ("string", False),
                                     "blocks": ("string", False)},
}
# Arguments newer than the 2020 spec (Slack's method reference): message metadata (2022).
EXTRA_ARGS: dict[str, dict[str, tuple[str, bool]]] = {
    "chat.postMessage": {"metadata": ("string", False)},
    "chat.update": {"metadata": ("string", False)},
    "conversations.history": {"include_all_metadata": ("boolean", False)},
    "conversations.replies": {"include_all_metadata": ("boolean", False)},
}
JSON_PARAMS = {"blocks", "view", "attachments", "files", "metadata"}
# slack_sdk adds `team_id` to every call of a client bound to a workspace (org-wide apps,
# newer than the 2020 spec); Slack accepts it on every method.
GLOBAL_PARAMS = {"team_id": ("string", False)}
RESPONSE_URL_KEYS = {"text", "blocks", "response_type", "replace_original", "delete_original", "thread_ts", "mrkdwn"}


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str = ""
    at: float = 0.0


def load_spec(path: Path) -> dict[str, dict[str, tuple[str, bool]]]:
    spec = json.loads(path.read_text(encoding="utf-8"))
    methods: dict[str, dict[str, tuple[str, bool]]] = {}
    for name, ops in spec["paths"].items():
        params: dict[str, tuple[str, bool]] = {}
        for op in ops.values():
            for p in op.get("parameters", []):
                params[p["name"]] = (p.get("type", "string"), bool(p.get("required")))
        methods[name.lstrip("/")] = params
    methods.update(EXTRA_METHODS)
    for name, extra in EXTRA_ARGS.items():
        methods[name] = {**methods.get(name, {}), **extra}
    return methods


def _type_ok(kind: str, name: str, value: Any) -> bool:
    if name in JSON_PARAMS:
        if isinstance(value, (list, dict)):
            return True
        try:
            json.loads(value)
            return True
        except (TypeError, ValueError):
            return False
    if kind == "boolean":
        return isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0")
    if kind in ("number", "integer"):
        try:
            float(value) if kind == "number" else int(value)
            return True
        except (TypeError, ValueError):
            return False
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def block_kit_problems(blocks: Any, *, surface: str = "message") -> list[str]:
    """The Block Kit limits of FACTS.md."""
    if blocks in (None, ""):
        return []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    problems = []
    limit = 50 if surface == "message" else 100
    if len(blocks) > limit:
        problems.append(f"{len(blocks)} blocks > {limit}")
    for b in blocks:
        if len(b.get("block_id", "")) > 255:
            problems.append("block_id > 255")
        if b["type"] == "section":
            if "text" in b and len(b["text"]["text"]) > 3000:
                problems.append("section text > 3000")
            fields = b.get("fields", [])
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                problems.append("section fields > 10 × 2000")
        if b["type"] == "header" and len(b["text"]["text"]) > 150:
            problems.append("header > 150")
        if b["type"] == "actions":
            if len(b["elements"]) > 25:
                problems.append("actions > 25 elements")
            for e in b["elements"]:
                if len(e["text"]["text"]) > 75 or len(e.get("value", "")) > 2000 or len(e.get("action_id", "")) > 255:
                    problems.append("button over limits")
    return problems


def view_problems(view: Any) -> list[str]:
    if isinstance(view, str):
        view = json.loads(view)
    problems = block_kit_problems(view.get("blocks", []), surface=view.get("type", "modal"))
    if view.get("type") == "modal":
        for key in ("title", "submit", "close"):
            if key in view and len(view[key]["text"]) > 24:
                problems.append(f"modal {key} > 24")
    if len(view.get("private_metadata", "")) > 3000:
        problems.append("private_metadata > 3000")
    if len(json.dumps(view)) > 250_000:
        problems.append("view > 250 kB")
    return problems


@dataclass
class SlackMock:
    spec_path: Path
    team: str = "T0DEMO"
    bot_user: str = "UCAUSETTE"
    bot_id: str = "BCAUSETTE"
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → conversations.info's channel
    members: dict[str, list[str]] = field(default_factory=dict)  # channel id → conversations.members' user ids
    history_page: int = 2
    failures: dict[str, list[str]] = field(default_factory=dict)  # method → errors to answer, in turn
    rate_limits: dict[str, int] = field(default_factory=dict)     # method → how many 429s first
    hooks: list[Callable[[Call], None]] = field(default_factory=list)
    http_failures: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # method → (status, Retry-After)
    delays: dict[str, float] = field(default_factory=dict)  # method → seconds before answering
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel → messages the bot posted
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id → the file (its `shares`…)
    after_failures: dict[str, list[int | str]] = field(default_factory=dict)  # method → HTTP status or "reset", after the effect
    url: str = ""

    def __post_init__(self) -> None:
        self.methods = load_spec(self.spec_path)
        self._ts = itertools.count(1)
        self._base_ts = 1_763_888_400
        self._runner: web.AppRunner | None = None
        self._stop_event: asyncio.Event | None = None
        self.changed = threading.Condition()
        self.sockets: list[web.WebSocketResponse] = []

    # Server ------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_post("/upload/{file}", self._upload)
        app.router.add_get("/socket", self._socket)
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        real_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{real_port}"
        return self.url

    def _stopping(self) -> asyncio.Event:
        if self._stop_event is None:
            self._stop_event = asyncio.Event()
        return self._stop_event

    async def stop(self) -> None:
        self._stopping().set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    # Recording ---------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()
        for hook in self.hooks:
            hook(call)

    def of(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(list(self.calls)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True

    def fail_http(self, method: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer `method` with HTTP `status` (and `Retry-After`) the next `times` calls."""
        self.http_failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def fail_after(self, method: str, status: int | str = 500, times: int = 1) -> None:
        """Let the next `times` calls of `method` take effect, then answer HTTP `status`, or
        close the connection without answering when `status` is "reset"."""
        self.after_failures.setdefault(method, []).extend([status] * times)

    def files_in(self, channel: str) -> list[str]:
        """Ids of the files a person sees in `channel` (every message that carries one), oldest first."""
        return [f["id"] for m in self.posts.get(channel, []) for f in m.get("files") or []]

    def visible(self, channel: str) -> list[dict[str, Any]]:
        """The bot's messages a person sees in `channel` (a DM's channel is D…), oldest first."""
        return list(self.posts.get(channel, []))

    def next_ts(self) -> str:
        return f"{self._base_ts + next(self._ts)}.000100"

    # Handlers ----------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if raw:
            if "json" in ctype:
                args.update(json.loads(raw))
            else:
                args.update(dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(args.pop("token", ""))
        call = Call(method, args, token, time.monotonic())
        problems = self.validate(method, args, token)
        self._record(call)
        if problems:
            self.violations += [f"{method}: {p}" for p in problems]
            return web.json_response({"ok": False, "error": "invalid_arguments", "problems": problems})
        if self.http_failures.get(method):
            status, retry_after = self.http_failures[method].pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response({"ok": False, "error": "ratelimited" if status == 429 else "internal_error"},
                                     status=status, headers=headers)
        if self.rate_limits.get(method, 0) > 0:
            self.rate_limits[method] -= 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"})
        if self.failures.get(method):
            error = self.failures[method].pop(0)
            return web.json_response({"ok": False, "error": error, **({"needed": "chat:write"} if error == "missing_scope" else {})})
        answer = self.answer(method, args)
        if self.after_failures.get(method):
            status = self.after_failures[method].pop(0)
            if status == "reset":
                assert request.transport is not None
                request.transport.abort()  # the effect happened; the caller never hears of it
                raise asyncio.CancelledError
            return web.json_response({"ok": False, "error": "internal_error"}, status=int(status))
        if self.delays.get(method):
            try:  # cut short when the mock stops (a delayed answer must not hold the test's teardown)
                await asyncio.wait_for(self._stopping().wait(), self.delays[method])
            except asyncio.TimeoutError:
                pass
        return web.json_response(answer)

    def validate(self, method: str, args: dict[str, Any], token: str) -> list[str]:
        params = self.methods.get(method)
        if params is None:
            return [f"unknown method {method}"]
        params = {**GLOBAL_PARAMS, **params}
        problems = []
        for name, value in args.items():
            if name not in params:
                problems.append(f"unknown argument {name!r}")
            elif not _type_ok(params[name][0], name, value):
                problems.append(f"argument {name!r} is not a {params[name][0]}: {value!r:.80}")
        for name, (_, required) in params.items():
            if required and name != "token" and name not in args:
                problems.append(f"missing required argument {name!r}")
        if "token" in params and params["token"][1] and not token:
            problems.append("no token")
        if "blocks" in args:
            problems += block_kit_problems(args["blocks"])
        if "view" in args:
            problems += view_problems(args["view"])
        if len(str(args.get("text", ""))) > 40_000:
            problems.append("text > 40000")
        return problems

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://demo.slack.com/", "team": "Demo", "user": "causette",
                    "team_id": self.team, "user_id": self.bot_user, "bot_id": self.bot_id}
        if method in ("chat.postMessage", "chat.update"):
            channel = str(args.get("channel", ""))
            if channel.startswith("U"):
                channel = "D" + channel[1:]
            ts = args.get("ts") or self.next_ts()
            self._keep(method, channel, str(ts), args)
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text", ""), "ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method in ("views.open", "views.publish"):
            return {"ok": True, "view": {"id": "V" + str(next(self._ts))}}
        if method == "users.info":
            uid = str(args.get("user", ""))
            user = self.users.get(uid) or {"id": uid, "name": uid.lower(), "real_name": uid,
                                           "profile": {"real_name": uid, "display_name": "", "title": ""}, "tz": "Europe/Paris"}
            return {"ok": True, "user": user}
        if method == "conversations.open":
            users = str(args.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}
        if method == "conversations.history" and str(args.get("include_all_metadata", "")).lower() in ("1", "true"):
            mine = list(reversed(self.posts.get(str(args.get("channel")), [])))[: int(args.get("limit") or 100)]
            return {"ok": True, "messages": mine, "has_more": False, "response_metadata": {"next_cursor": ""}}
        if method == "conversations.history":
            messages = self.history.get(str(args.get("channel")), [])
            start = int(args.get("cursor") or 0)
            page = messages[start : start + self.history_page]
            nxt = start + self.history_page
            return {"ok": True, "messages": page, "has_more": nxt < len(messages),
                    "response_metadata": {"next_cursor": str(nxt) if nxt < len(messages) else ""}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/socket"}
        if method == "oauth.v2.access":
            team = f"T{args.get('code', 'X')}"
            return {"ok": True, "app_id": "A0CAUSETTE", "authed_user": {"id": "UADMIN"}, "scope": "chat:write,commands",
                    "token_type": "bot", "access_token": f"xoxb-{team}", "bot_user_id": "UBOT" + team,
                    "team": {"id": team, "name": "Workspace " + team}, "enterprise": None, "is_enterprise_install": False}
        if method == "conversations.info":
            channel = self.channels.get(str(args.get("channel")))
            return {"ok": True, "channel": channel} if channel else {"ok": False, "error": "channel_not_found"}
        if method == "conversations.create":
            name = str(args.get("name", ""))
            if not name or name != name.lower() or len(name) > 80 or any(c in name for c in " .,#@"):
                return {"ok": False, "error": "invalid_name_specials" if name else "invalid_name_required"}
            if any(c.get("name") == name for c in self.channels.values()):
                return {"ok": False, "error": "name_taken"}
            cid = f"C{next(self._ts):05d}NEW"
            private = str(args.get("is_private", "")).lower() in ("1", "true")
            self.channels[cid] = {"id": cid, "name": name, "is_channel": not private, "is_group": private,
                                  "is_private": private, "is_member": True, "num_members": 1}
            self.members[cid] = [self.bot_user]
            return {"ok": True, "channel": self.channels[cid]}
        if method == "conversations.setPurpose":
            channel = self.channels.get(str(args.get("channel")))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            channel["purpose"] = {"value": str(args.get("purpose", ""))}
            return {"ok": True, "purpose": str(args.get("purpose", ""))}
        if method == "conversations.invite":
            cid = str(args.get("channel"))
            if cid not in self.channels:
                return {"ok": False, "error": "channel_not_found"}
            users = [u for u in str(args.get("users", "")).split(",") if u]
            members = self.members.setdefault(cid, [])
            if all(u in members for u in users):
                return {"ok": False, "error": "already_in_channel"}
            members += [u for u in users if u not in members]
            return {"ok": True, "channel": self.channels[cid]}
        if method == "conversations.members":
            if str(args.get("channel")) not in self.members:
                return {"ok": False, "error": "channel_not_found"}
            members = self.members[str(args.get("channel"))]
            start = int(args.get("cursor") or 0)
            page = members[start : start + self.history_page]
            nxt = start + self.history_page
            return {"ok": True, "members": page, "response_metadata": {"next_cursor": str(nxt) if nxt < len(members) else ""}}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts", "")).replace(".", "")
            return {"ok": True, "channel": args.get("channel"), "permalink": f"https://demo.slack.com/archives/{args.get('channel')}/p{ts}"}
        if method == "conversations.replies":
            thread = str(args.get("ts", ""))
            mine = [m for m in self.posts.get(str(args.get("channel")), []) if thread in (m.get("ts"), m.get("thread_ts"))]
            return {"ok": True, "messages": mine[: int(args.get("limit") or 100)], "has_more": False}
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._ts):07d}"
            self.files[fid] = {"id": fid, "name": str(args["filename"]), "title": str(args["filename"]), "size": 0,
                               "length": int(args["length"]), "alt_txt": args.get("alt_txt"), "uploaded": False,
                               "created": int(time.time()), "user": self.bot_user, "mimetype": "image/png",
                               "channels": [], "groups": [], "ims": [], "shares": {}}
            return {"ok": True, "upload_url": f"{self.url}/upload/{fid}", "file_id": fid}
        if method == "files.completeUploadExternal":
            return self._complete(args)
        if method == "files.info":
            file = self.files.get(str(args.get("file")))
            if file is None or not file["uploaded"]:
                return {"ok": False, "error": "file_not_found"}
            public = {k: v for k, v in file.items() if k not in ("uploaded", "length", "alt_txt")}
            return {"ok": True, "file": public, "comments": [], "response_metadata": {"next_cursor": ""}}
        return {"ok": True}

    def _complete(self, args: dict[str, Any]) -> dict[str, Any]:
        """files.completeUploadExternal: every file uploaded in full is shared into the channel,
        one message carrying them (with the comment), each call, as Slack does."""
        listed = args["files"] if isinstance(args["files"], list) else json.loads(args["files"])
        files = [self.files.get(str(f.get("id"))) for f in listed]
        if any(f is None or not f["uploaded"] for f in files):
            return {"ok": False, "error": "file_not_found"}
        channel = str(args.get("channel_id") or args.get("channels") or "").split(",")[0]
        if not channel:  # uploaded, shared nowhere: a private file only its owner sees
            return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files if f]}
        ts = self.next_ts()
        private = channel[:1] in ("D", "G") or bool(self.channels.get(channel, {}).get("is_private"))
        share = {"ts": ts, "channel_name": self.channels.get(channel, {}).get("name", channel), "reply_count": 0}
        if args.get("thread_ts"):
            share["thread_ts"] = str(args["thread_ts"])
        for f, asked in zip(files, listed):
            assert f is not None
            f["title"] = str(asked.get("title") or f["title"])
            f["shares"].setdefault("private" if private else "public", {}).setdefault(channel, []).append(share)
            kind = "ims" if channel[:1] == "D" else "groups" if private else "channels"
            if channel not in f[kind]:
                f[kind].append(channel)
        message = {"type": "message", "ts": ts, "text": str(args.get("initial_comment") or ""), "upload": True,
                   "files": [{"id": f["id"], "name": f["name"], "title": f["title"]} for f in files if f],
                   "bot_id": self.bot_id, "user": self.bot_user}
        if args.get("thread_ts"):
            message["thread_ts"] = str(args["thread_ts"])
        self.posts.setdefault(channel, []).append(message)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files if f]}

    def _keep(self, method: str, channel: str, ts: str, args: dict[str, Any]) -> None:
        """The channel's state: a post adds a message, an update edits it in place."""
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        kept = self.posts.setdefault(channel, [])
        if method == "chat.update":
            for message in kept:
                if message["ts"] == ts:
                    message.update(text=args.get("text", ""), blocks=args.get("blocks"), edited=True)
            return
        message = {"type": "message", "ts": ts, "text": args.get("text", ""), "blocks": args.get("blocks"),
                   "bot_id": self.bot_id, "user": self.bot_user}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        if metadata:
            message["metadata"] = metadata
        kept.append(message)

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        problems = [f"unknown key {k!r}" for k in body if k not in RESPONSE_URL_KEYS] + block_kit_problems(body.get("blocks"))
        if body.get("response_type") not in (None, "ephemeral", "in_channel"):
            problems.append("bad response_type")
        self._record(Call("response_url", {**body, "key": request.match_info["key"]}, "", time.monotonic()))
        if problems:
            self.violations += [f"response_url: {p}" for p in problems]
            return web.Response(status=400, text="invalid_payload")
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, push envelopes (`push`), record the client's acks."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0CAUSETTE"},
                            "debug_info": {"host": "mock", "approximate_connection_time": 3600}})
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                self._record(Call("socket_ack", json.loads(message.data), "", time.monotonic()))
        self.sockets.remove(ws)
        return ws

    async def push(self, envelope: dict[str, Any]) -> None:
        for ws in list(self.sockets):
            await ws.send_json(envelope)

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        fid = request.match_info["file"]
        self._record(Call("upload", {"file": fid, "size": len(data)}, "", time.monotonic()))
        if self.http_failures.get("upload"):  # fail_http("upload", 500): the bytes did not arrive
            status, _ = self.http_failures["upload"].pop(0)
            return web.Response(status=status, text="upload failed")
        file = self.files.get(fid)
        if file is None:
            return web.Response(status=404, text="unknown upload")
        if len(data) != file["length"]:  # Slack refuses bytes that are not the announced length
            self.violations.append(f"upload: {len(data)} bytes, {file['length']} announced")
            return web.Response(status=400, text="length mismatch")
        file.update(uploaded=True, size=len(data))
        return web.Response(text="OK - " + str(len(data)))


class LoopThread:
    """An asyncio loop in a daemon thread: servers under test live here; tests stay sync."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
