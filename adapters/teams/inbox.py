"""Teams activities through the durable inbox: written before the HTTP answer, processed after.

`/api/messages` authenticates the request (botbuilder's JWT check, adapters/teams/http.py),
then `TeamsInbox.accept` writes the activity's JSON and the identity the token proved (its
claims, the outbound audience and caller id, never the bearer token) to the inbox
(adapters/server.py `Pipeline.put`), and only then answers 201. When the row cannot be
written within ACK_WRITE_SECONDS the answer is 503, so the Bot Connector retries; a
duplicate (a retry of an activity already written) is answered 201 with nothing more.

Once the answer went out, the express lane (adapters/express.py: one claimer instead
of every worker thread at once) or the inbox worker hands each row to `process_row` in a
thread. It rebuilds the turn with botbuilder's `CloudAdapter.process_activity` on the stored
activity and identity (so replies go to the stored serviceUrl with the bot's own
credentials) and runs it on the server's event loop. Exactly one effect per activity: its
idempotency claim and its inbox row's "done" are written by the transaction of the
activity's main event (`RowWork`, adapters/shell.py, passed to `Bot.handle(...,
in_transaction=...)` by adapters/teams/turn.py), so a retry after a crash either finds the
work committed and skips it, or redoes it from the start. That transaction also records the event's replies in the
durable outbox (bot/outbox.py); they go out after the commit, and the outbox row is marked
sent once the Bot Connector took them. A reply that failed (429 or 5xx after the paced
retries) or that a crash interrupted is sent again, proactively, by the outbox sweeper; the
work is never done twice (the Bot Connector has no idempotent send: a reply whose outcome
was unknown may arrive twice).

Invokes are not written, but one: Causette's cards submit with `Action.Submit`, which Teams
delivers as message activities (they go through the inbox like any message), and Causette
offers no Action.Execute nor task module. Its message actions ("Send as a suggestion",
`composeExtension/submitAction`) are written like messages and answered with an empty 200
(which closes their dialog); any other invoke is answered at once as botbuilder answers an
invoke the bot does not implement (501).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sqlalchemy.orm import Session

from adapters import shell
from adapters.teams import inbound
from adapters.express import ExpressLane
from bot.types import Effect
from store.inbox import Claimed

log = logging.getLogger(__name__)
PLATFORM = "teams"
ACK_WRITE_SECONDS = 2.0   # how long the HTTP answer may wait for the inbox write
TURN_SECONDS = 300.0      # a turn longer than this is abandoned and retried (its work is exactly-once)
STORES_REFERENCE = ("message", "conversationUpdate", "installationUpdate")
# The claims a reply needs (which app, which audience, skill or channel); the token itself never.
IDENTITY_CLAIMS = ("aud", "appid", "azp", "ver", "iss", "serviceurl", "tid")


@dataclass
class RowWork(shell.RowWork):
    """A turn's inbox row work (adapters/shell.py), and the main event's replies its
    transaction recorded in the outbox."""

    recorded: list[Effect] = field(default_factory=list)


def worth_writing(body: Mapping[str, Any]) -> bool:
    """Whether processing the activity could change anything: it carries events for the core,
    or a conversation reference to store. Typing indicators, read receipts and activities
    without a tenant are answered without a write, as they were processed without effect."""
    try:
        parsed = inbound.parse(body)
    except inbound.BadActivity as exc:
        log.info("teams: ignored %s activity: %s", body.get("type"), exc)
        return False
    return bool(parsed.events) or (body.get("type") in STORES_REFERENCE and bool(body.get("serviceUrl")))


def delivery_key(body: Mapping[str, Any]) -> str:
    """The inbox's dedupe key: the activity's claim key (type, activity id, conversation id,
    and what tells an edit or a reaction apart), or a fresh one for an activity without id."""
    return inbound.dedup_key(body) or f"teams:noid:{uuid.uuid4().hex}"


def order_key(body: Mapping[str, Any]) -> str:
    """Activities of one conversation run in arrival order (a channel's threads share it)."""
    conversation = body.get("conversation") if isinstance(body.get("conversation"), Mapping) else {}
    return f"{inbound.tenant_of(body)}:{str(conversation.get('id') or '').split(';messageid=')[0]}"


def identity_of(auth: Any) -> dict[str, Any]:
    """What `process_row` needs to answer as the authenticated request would have: the
    claims naming the app and audience, the outbound audience and the caller id."""
    identity = getattr(auth, "claims_identity", None)
    claims = getattr(identity, "claims", None) or {}
    kept = {k: v for k, v in claims.items() if k in IDENTITY_CLAIMS and isinstance(v, (str, int, float, bool))}
    return {"claims": kept, "authenticated": bool(getattr(identity, "is_authenticated", False)),
            "type": getattr(identity, "authentication_type", None), "audience": getattr(auth, "audience", None),
            "caller_id": getattr(auth, "caller_id", None)}


class TeamsInbox:
    """The Teams side of the durable inbox: `accept` (HTTP, on the event loop) and
    `process_row` (the inbox worker's processor, in a worker thread)."""

    def __init__(self, adapter: Any, turn: Any, pipeline: Any) -> None:
        self.adapter = adapter            # botbuilder CloudAdapter
        self.turn = turn                  # adapters.teams.turn.TeamsTurn
        self.pipeline = pipeline          # adapters.server.Pipeline
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's, set on startup
        self.express = ExpressLane(pipeline.worker)  # started and stopped with the server
        self._turns = 0
        self._lock = threading.Lock()

    # HTTP side (event loop) ---------------------------------------------------------------
    async def accept(self, body: Mapping[str, Any], auth: Any) -> int:
        """Write an authenticated activity; the HTTP status to answer (201 written or
        duplicate, 503 not written in time)."""
        if not worth_writing(body):
            return 201
        payload = json.dumps({"activity": body, "identity": identity_of(auth)}, ensure_ascii=False)
        write = asyncio.ensure_future(asyncio.to_thread(
            self.pipeline.put, PLATFORM, delivery_key(body), str(body.get("type") or "")[:40], payload,
            tenant=inbound.tenant_of(body), order_key=order_key(body), wake=False))
        try:
            fresh = await asyncio.wait_for(asyncio.shield(write), ACK_WRITE_SECONDS)
        except asyncio.TimeoutError:
            # The write goes on; if it lands, the Connector's retry is a duplicate of it.
            write.add_done_callback(self._late_write_done)
            log.error("teams: %s activity not written to the inbox in %.1f s; answered 503", body.get("type"), ACK_WRITE_SECONDS)
            return 503
        except Exception as exc:  # noqa: BLE001 - the database is away
            log.error("teams: %s activity could not be written to the inbox (%s); answered 503", body.get("type"),
                      type(exc).__name__)
            return 503
        if not fresh:
            log.info("teams: activity %s delivered again; acknowledged, nothing more", delivery_key(body))
        return 201

    def _late_write_done(self, write: "asyncio.Future[bool]") -> None:
        if not write.cancelled() and write.exception() is None and write.result():
            self.express.poke()

    def wake(self) -> None:
        """After the HTTP answer went out: the express lane takes the row (adapters/express.py)."""
        self.express.poke()

    # Worker side (a worker thread) -------------------------------------------------------
    def process_row(self, row: Claimed, finish: Callable[[Session], None]) -> None:
        """The inbox worker's processor for platform "teams": one activity's turn, run on the
        server's event loop. Raises (the row is retried later) when the turn could not run or
        a failure worth retrying happened in it."""
        loop = self.loop
        if loop is None or loop.is_closed():
            raise RuntimeError("teams: the server's event loop is not running")
        data = json.loads(row.payload)
        work = RowWork(finish)
        future = asyncio.run_coroutine_threadsafe(self._run(data.get("activity") or {}, data.get("identity") or {}, work), loop)
        with self._lock:
            self._turns += 1
        try:
            future.result(TURN_SECONDS)
        except TimeoutError:
            future.cancel()
            raise
        finally:
            with self._lock:
                self._turns -= 1

    async def _run(self, body: Mapping[str, Any], identity: Mapping[str, Any], work: RowWork) -> None:
        from botbuilder.schema import Activity

        activity = Activity().deserialize(dict(body))
        failures: list[BaseException] = []

        async def logic(turn: Any) -> None:  # botbuilder's pipeline logs and swallows what a turn raises
            try:
                await self.turn.on_turn(turn, work)
            except Exception as exc:  # noqa: BLE001 - handed back to the inbox worker below
                failures.append(exc)

        await self.adapter.process_activity(self._authenticated(identity), activity, logic)
        if failures:
            raise failures[0]

    def _authenticated(self, identity: Mapping[str, Any]) -> Any:
        """The AuthenticateRequestResult of the original request, rebuilt from what was stored."""
        from botframework.connector.auth import AuthenticateRequestResult, ClaimsIdentity

        claims = ClaimsIdentity(dict(identity.get("claims") or {}), bool(identity.get("authenticated")),
                                identity.get("type"))
        result = AuthenticateRequestResult()
        result.claims_identity = claims
        result.audience = identity.get("audience")
        result.caller_id = identity.get("caller_id")
        result.connector_factory = self.adapter.bot_framework_authentication.create_connector_factory(claims)
        return result

    # Tests and shutdown ------------------------------------------------------------------
    def busy(self) -> bool:
        with self._lock:
            turns = self._turns
        return turns > 0 or self.pipeline.worker.busy()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every written activity was processed (its replies sent)."""
        await asyncio.to_thread(self.pipeline.worker.drain, timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.busy() and loop.time() < deadline:
            await asyncio.sleep(0.002)
