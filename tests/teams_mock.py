"""A local mock Bot Connector (loopback aiohttp server) for the Teams adapter's tests and benchmark.

Records every call the bot makes (replies, sends, updates, conversation creation, member
reads) and can answer the next calls with errors such as 429 + Retry-After.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


async def serve_locally(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start `app` on a free loopback port: its runner (to clean up) and its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/"


@dataclass
class Call:
    method: str
    kind: str                 # reply | send | update | create | members | member
    conversation_id: str
    activity_id: str
    body: Any
    at: float


@dataclass
class MockConnector:
    roster: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    failures: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    url: str = ""
    attempts: int = 0
    stalled: bool = False     # messages are recorded on arrival, then answered only once this is False again

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.arrived = asyncio.Event()

    # Queries ---------------------------------------------------------------
    def messages(self) -> list[Call]:
        return [c for c in self.calls if c.kind in ("reply", "send", "update")]

    def fail_next(self, status: int, retry_after: float | None = None, times: int = 1) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        for _ in range(times):
            self.failures.append((status, headers))

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Call]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages()) < count:
            if loop.time() > deadline:
                raise AssertionError(f"expected {count} messages at the mock connector, got {len(self.messages())}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.05)
            except asyncio.TimeoutError:
                pass
        return self.messages()

    # Server ----------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._activity)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_get("/v3/conversations/{cid}/pagedmembers", self._paged)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self._member)
        self._runner, self.url = await serve_locally(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _record(self, request: web.Request, kind: str, body: Any) -> None:
        loop = asyncio.get_running_loop()
        self.calls.append(Call(request.method, kind, request.match_info.get("cid", ""),
                               request.match_info.get("aid", ""), body, loop.time()))
        self.arrived.set()

    async def _activity(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.json()
        if self.failures:
            status, headers = self.failures.popleft()
            return web.json_response({"error": {"code": "Throttled", "message": "slow down"}}, status=status, headers=headers)
        if request.method == "PUT":
            self._record(request, "update", body)
            await self._hold()
            return web.json_response({"id": request.match_info["aid"]})
        kind = "reply" if "aid" in request.match_info else "send"
        self._record(request, kind, body)
        await self._hold()
        return web.json_response({"id": f"msg-{next(self._ids)}"})

    async def _hold(self, limit: float = 60.0) -> None:
        """A slow Bot Connector: the message arrived (recorded), the answer is late."""
        deadline = time.monotonic() + limit
        while self.stalled and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.failures:
            status, headers = self.failures.popleft()
            return web.json_response({"error": {"code": "Throttled"}}, status=status, headers=headers)
        self._record(request, "create", body)
        member = (body.get("members") or [{}])[0].get("id", "someone")
        return web.json_response({"id": f"a:personal-{member}", "activityId": f"act-{next(self._ids)}",
                                  "serviceUrl": self.url}, status=201)

    async def _paged(self, request: web.Request) -> web.Response:
        self._record(request, "members", dict(request.query))
        size = int(request.query.get("pageSize") or 100)
        start = int(request.query.get("continuationToken") or 0)
        page = self.roster[start : start + size]
        result: dict[str, Any] = {"members": page}
        if start + size < len(self.roster):
            result["continuationToken"] = str(start + size)
        return web.json_response(result)

    async def _member(self, request: web.Request) -> web.Response:
        self._record(request, "member", {})
        mid = request.match_info["mid"]
        for member in self.roster:
            if member.get("id") == mid:
                return web.json_response(member)
        return web.json_response({"error": {"code": "NotFound"}}, status=404)


BOT = {"id": "28:causette-bot", "name": "Causette"}


def personal_message(service_url: str, tenant: str, user: str, text: str, activity_id: str, name: str = "") -> dict[str, Any]:
    """A message in the user's personal chat with the bot, as Teams posts it."""
    return {"type": "message", "id": activity_id, "channelId": "msteams", "serviceUrl": service_url,
            "timestamp": "2026-11-23T09:00:00.000Z", "locale": "en-US", "text": text, "textFormat": "plain",
            "from": {"id": user, "name": name or user, "aadObjectId": "aad-" + user},
            "recipient": BOT, "conversation": {"id": "a:dm-" + user, "conversationType": "personal", "tenantId": tenant},
            "channelData": {"tenant": {"id": tenant}}}


def channel_message(service_url: str, tenant: str, user: str, channel: str, text: str, activity_id: str,
                    mention_bot: bool = True, name: str = "", team: str = "19:team@thread.tacv2") -> dict[str, Any]:
    entities = []
    if mention_bot:
        text = "<at>Causette</at> " + text
        entities.append({"type": "mention", "text": "<at>Causette</at>", "mentioned": BOT})
    return {"type": "message", "id": activity_id, "channelId": "msteams", "serviceUrl": service_url,
            "timestamp": "2026-11-23T09:00:00.000Z", "text": text, "entities": entities,
            "from": {"id": user, "name": name or user}, "recipient": BOT,
            "conversation": {"id": f"{channel};messageid={activity_id}", "conversationType": "channel", "tenantId": tenant},
            "channelData": {"tenant": {"id": tenant}, "team": {"id": team}, "channel": {"id": channel}}}


def bot_added_to_team(service_url: str, tenant: str, team: str, activity_id: str) -> dict[str, Any]:
    return {"type": "conversationUpdate", "id": activity_id, "channelId": "msteams", "serviceUrl": service_url,
            "from": {"id": "29:admin", "name": "Admin"}, "recipient": BOT, "membersAdded": [BOT],
            "conversation": {"id": team, "conversationType": "channel", "tenantId": tenant},
            "channelData": {"tenant": {"id": tenant}, "eventType": "teamMemberAdded", "team": {"id": team, "name": "Demo"},
                            "channel": {"id": team, "name": "General"}}}
