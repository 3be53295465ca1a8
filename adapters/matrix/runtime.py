"""The Matrix bot at run time: one account's client, its sync loop, its inbox processor.

Start: log in (the access token and device id given, or kept in the store directory from a
first password login: `credentials.json`, mode 0600), load the encryption store, upload the
device keys, take the account's sync lease (one sync loop per bot account: a second process
logs that it stays idle for Matrix, and retries), then the first sync:
- with no sync token stored (a new bot, or a new database): a full sync whose timeline is
  NOT handled — a new bot does not answer the rooms' past messages; invites are handled;
- with a token: a full-state sync since it, whose events are handled (they arrived after the
  last events the bot wrote down, while it was away).
Then the loop: `sync` (long poll), the encryption chores (keys upload/query/claim, to-device
messages), invites (joined when the inviter's server is allowed, refused otherwise), then
every timeline event worth handling is written to the durable inbox (store/inbox.py, dedupe
key = the event id), and only after those writes committed is the sync token stored
(`matrix_state`). A kill between the two replays the batch: the inbox deduplicates it.

Encrypted rooms: events arrive decrypted (nio decrypts during the sync) and their decrypted
source is what the inbox row carries. An event that cannot be decrypted is logged, its room
key is requested, and its sender is asked once per session and room to re-share the keys
(`matrix.reshare_keys`) — never a crash.

Processing (a worker thread of the app's InboxWorker): `inbound.parse`, forms in progress and
numbered answers to cards, then `Bot.handle(..., in_transaction=…, record=…)`: the row is
marked done and its replies written to the durable outbox by the work's own transaction;
they are sent right after the commit on the runtime's event loop (adapters/matrix/sender.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence, TypeVar

from sqlalchemy.orm import Session

from adapters import shell
from adapters.matrix import forms, inbound
from adapters.matrix import render as rd
from adapters.matrix.sender import MatrixSender, Observer, Refused
from adapters.matrix.settings import allowed_servers, missing
from adapters.matrix.state import State
from bot import outbox
from bot.core import Bot
from bot.types import ConversationRef, Effect, IncomingMessage, MembersChanged, Outbound, Reply, UserRef
from store.db import ALL_TENANTS
from store.inbox import Claimed

log = logging.getLogger("adapters.matrix")
T = TypeVar("T")
PLATFORM = "matrix"
SYNC_TIMEOUT_MS = 30_000
SEND_SECONDS = 300.0
LEASE_RENEW_SECONDS = 20.0
LEASE_RETRY_SECONDS = 30.0
SYNC_FILTER = {"room": {"timeline": {"limit": 100}, "state": {"lazy_load_members": False}},
               "presence": {"not_types": ["*"]}}
REMEMBER_DONE = 20_000  # event ids whose processing `wait_for` can still be told about


class MatrixRuntime:
    """One bot account on one homeserver. Tests: see adapters/matrix/__init__.py."""

    def __init__(self, bot: Bot, settings: Any, *, observer: Observer | None = None,
                 sync_timeout_ms: int = SYNC_TIMEOUT_MS, welcome: bool = True) -> None:
        lacks = missing(settings)
        if lacks:
            raise ValueError("Matrix: needs " + "; ".join(lacks))
        self.bot = bot
        self.services = bot.services
        self.settings = settings
        self.view = inbound.BotView(settings.matrix_user_id, allowed_servers(settings), settings.matrix_command_prefix)
        self.tenant = self.view.server
        self.state = State(self.services.db, settings.matrix_user_id, self.services.clock)
        self.sender = MatrixSender(self, observer)
        self.sync_timeout_ms = sync_timeout_ms
        self.welcome = welcome
        self.client: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pipeline: Any = None
        self._own_pipeline = False
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._first_sync = asyncio.Event()
        self._syncs = 0
        self._sync_cond: asyncio.Condition | None = None
        self._lease_at = 0.0
        self._direct: dict[str, str] = {}        # room id → the person of a direct chat
        self._dm_of: dict[str, str] = {}         # person → their direct chat with the bot
        self._created: set[str] = set()          # rooms the bot opened itself (no welcome there)
        self._asked: set[tuple[str, str]] = set()  # (room, megolm session) whose sender was asked to re-share keys
        self._done: "OrderedDict[str, threading.Event]" = OrderedDict()
        self._done_lock = threading.Lock()
        self._inflight = 0
        self._known_rooms: set[str] = set()      # rooms known before the sync being handled

    # Lifecycle -----------------------------------------------------------------------------
    def attach(self, app: Any, outbox_: Any) -> None:
        """Mount on the server's aiohttp app: the app's durable inbox, its outbox, its lifecycle."""
        from adapters.server import pipeline_key

        self.pipeline = app[pipeline_key()]
        self.pipeline.register(PLATFORM, self.process_row)
        outbox_.register(PLATFORM, self.deliver)

        async def start(_app: Any) -> None:
            await self.start()

        async def stop(_app: Any) -> None:
            await self.stop()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)

    async def start(self, pipeline: Any = None) -> None:
        """Log in, sync once, and run the sync loop in the background. Without a pipeline
        (attached to no app), the runtime runs its own durable inbox worker."""
        self.loop = asyncio.get_running_loop()
        self._sync_cond = asyncio.Condition()
        if self.pipeline is None:
            if pipeline is None:
                from adapters.server import Pipeline

                pipeline = Pipeline(self.bot, threads=2)
                self._own_pipeline = True
            self.pipeline = pipeline
            self.pipeline.register(PLATFORM, self.process_row)
            if self._own_pipeline:
                self.pipeline.start()
        if self.services.deliver is None:
            self.services.deliver = self.deliver
        await self._login()
        await self._wait_for_lease()
        await self._initial_sync()
        self._task = asyncio.create_task(self._sync_forever(), name="matrix-sync")

    async def stop(self) -> None:
        """Stop syncing, let the inbox finish what was written, close the client."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                pass
        if self._own_pipeline and self.pipeline is not None:
            await asyncio.to_thread(self.pipeline.worker.drain, 10)
            await asyncio.to_thread(self.pipeline.stop)
        else:
            deadline = time.monotonic() + 10
            while self._inflight and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        try:
            await asyncio.to_thread(self.state.release_lease, self.holder)
        except Exception:  # noqa: BLE001 - the lease expires by itself
            log.warning("matrix: could not release the sync lease; it expires by itself")
        if self.client is not None:
            await self.client.close()

    # Tests and benchmarks ------------------------------------------------------------------------
    async def wait_for(self, event_id: str, timeout: float = 20.0) -> bool:
        """True once the bot has processed the event `event_id` (its replies sent) or decided to
        ignore it; False after `timeout` seconds."""
        flag = self._flag(event_id)
        return await asyncio.to_thread(flag.wait, timeout)

    async def settle(self, timeout: float = 20.0) -> bool:
        """True once a sync that started after this call has completed and everything it wrote
        is processed (for steps expecting no reply)."""
        assert self._sync_cond is not None
        target = self._syncs + 2  # the sync running now may have started before the call
        deadline = time.monotonic() + timeout
        async with self._sync_cond:
            try:
                await asyncio.wait_for(self._sync_cond.wait_for(lambda: self._syncs >= target), timeout)
            except asyncio.TimeoutError:
                return False
        while time.monotonic() < deadline:
            if not self.pipeline.worker.busy() and not self._inflight and \
                    await asyncio.to_thread(self.pipeline.worker.drain, max(0.0, deadline - time.monotonic())):
                return True
            await asyncio.sleep(0.01)
        return False

    def _flag(self, event_id: str) -> threading.Event:
        with self._done_lock:
            flag = self._done.get(event_id)
            if flag is None:
                flag = self._done[event_id] = threading.Event()
                while len(self._done) > REMEMBER_DONE:
                    self._done.popitem(last=False)
            return flag

    def _processed(self, event_id: str) -> None:
        if event_id:
            self._flag(event_id).set()

    # Login ---------------------------------------------------------------------------------------
    def _credentials_path(self) -> Path | None:
        path = self.settings.matrix_store_path
        return Path(path) / "credentials.json" if path else None

    def _stored_credentials(self) -> dict[str, str] | None:
        path = self._credentials_path()
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("matrix: %s cannot be read; logging in again", path)
            return None
        if data.get("user_id") != self.view.user_id or data.get("homeserver") != self.settings.matrix_homeserver:
            return None
        return {k: str(v) for k, v in data.items()}

    def _store_credentials(self, access_token: str, device_id: str) -> None:
        path = self._credentials_path()
        if path is None:
            return
        data = {"user_id": self.view.user_id, "homeserver": self.settings.matrix_homeserver,
                "access_token": access_token, "device_id": device_id}
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)

    async def _login(self) -> None:
        from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiResponse

        s = self.settings
        encryption = bool(s.matrix_encryption)
        store = s.matrix_store_path or None
        if store:
            Path(store).mkdir(parents=True, exist_ok=True, mode=0o700)
        config = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2, encryption_enabled=encryption,
                                   store_sync_tokens=False, request_timeout=60)
        stored = self._stored_credentials()
        token = s.matrix_access_token or (stored or {}).get("access_token", "")
        device = s.matrix_device_id or ((stored or {}).get("device_id", "") if stored and
                                        (not s.matrix_access_token or stored.get("access_token") == s.matrix_access_token) else "")
        self.client = AsyncClient(s.matrix_homeserver, s.matrix_user_id, device_id=device or None,
                                  store_path=store or "", config=config)
        if token:
            if not device:
                whoami = await self.client.whoami() if self._set_token(token) else None
                device = getattr(whoami, "device_id", "") if isinstance(whoami, WhoamiResponse) else ""
                if not device:
                    raise RuntimeError("Matrix: MATRIX_DEVICE_ID is needed with MATRIX_ACCESS_TOKEN "
                                       "(the homeserver did not say which device the token belongs to)")
            self.client.restore_login(s.matrix_user_id, device, token)
            if not s.matrix_access_token:
                log.info("matrix: logged in as %s, device %s (credentials kept in the store)", s.matrix_user_id, device)
        else:
            response = await self.client.login(s.matrix_password, device_name="Causette")
            if not isinstance(response, LoginResponse):
                raise RuntimeError(f"Matrix: login of {s.matrix_user_id} failed: {getattr(response, 'message', response)}")
            device = response.device_id
            self._store_credentials(response.access_token, device)
            log.info("matrix: logged in as %s with a password, new device %s (its token and device id are kept in %s; "
                     "the password is no longer needed)", s.matrix_user_id, device, s.matrix_store_path or "memory only")
        if encryption and self.client.should_upload_keys:
            await self.client.keys_upload()
        await self._load_direct_rooms()

    def _set_token(self, token: str) -> bool:
        self.client.access_token = token
        self.client.user_id = self.settings.matrix_user_id
        return True

    async def _load_direct_rooms(self) -> None:
        from nio import DirectRoomsResponse

        try:
            response = await self.client.list_direct_rooms()
        except Exception:  # noqa: BLE001 - m.direct is a hint
            response = None
        if isinstance(response, DirectRoomsResponse):
            for user, rooms in (response.rooms or {}).items():
                for room in rooms or []:
                    self._direct[room] = user
                    self._dm_of.setdefault(user, room)
        stored = await asyncio.to_thread(self._stored_direct_rooms)
        for user, room in stored.items():
            self._direct[room] = user
            self._dm_of[user] = room

    def _stored_direct_rooms(self) -> dict[str, str]:
        from sqlalchemy import select

        from store.models.matrix import MatrixState

        with self.services.db.session(ALL_TENANTS, readonly=True) as s:
            rows = s.execute(select(MatrixState.name, MatrixState.value).where(
                MatrixState.account == self.view.user_id, MatrixState.name.like("dm:%")))
            return {name[3:]: value for name, value in rows}

    # The lease -----------------------------------------------------------------------------
    async def _wait_for_lease(self) -> None:
        warned = False
        while not self._stopping:
            other = await asyncio.to_thread(self.state.acquire_lease, self.holder)
            if other is None:
                self._lease_at = time.monotonic()
                if warned:
                    log.warning("matrix: the sync lease of %s is free again; this process (%s) now syncs it",
                                self.view.user_id, self.holder)
                return
            if not warned:
                log.error("matrix: %s is already synced by %s: one sync loop per bot account, so this process stays "
                          "idle for Matrix (it retries every %d s, and takes over if that process stops)",
                          self.view.user_id, other, LEASE_RETRY_SECONDS)
                warned = True
            await asyncio.sleep(LEASE_RETRY_SECONDS)

    async def _renew_lease(self) -> bool:
        if time.monotonic() - self._lease_at < LEASE_RENEW_SECONDS:
            return True
        other = await asyncio.to_thread(self.state.acquire_lease, self.holder)
        if other is not None:
            log.error("matrix: %s lost its sync lease to %s; stopping this process's sync loop", self.holder, other)
            return False
        self._lease_at = time.monotonic()
        return True

    # Sync ------------------------------------------------------------------------------------
    async def _initial_sync(self) -> None:
        from nio import SyncResponse

        token = await asyncio.to_thread(self.state.get, "sync_token")
        while True:
            response = await self.client.sync(timeout=0, sync_filter=SYNC_FILTER, since=token or None, full_state=True)
            if isinstance(response, SyncResponse):
                break
            wait = (getattr(response, "retry_after_ms", None) or 2000) / 1000
            log.warning("matrix: first sync failed (%s); again in %.1f s", getattr(response, "message", response), wait)
            await asyncio.sleep(min(wait, 30))
        await self._encryption_chores()
        await self._after_sync(response, handle_timeline=bool(token))
        if not token:
            log.info("matrix: first sync of %s done: %d rooms; their past messages are not answered",
                     self.view.user_id, len(self.client.rooms))
        self._first_sync.set()

    async def _sync_forever(self) -> None:
        from nio import SyncResponse

        backoff = 1.0
        while not self._stopping:
            try:
                if not await self._renew_lease():
                    await self._wait_for_lease()
                    continue
                since = self.client.next_batch
                response = await self.client.sync(timeout=self.sync_timeout_ms, sync_filter=SYNC_FILTER, since=since)
                if not isinstance(response, SyncResponse):
                    wait = (getattr(response, "retry_after_ms", None) or backoff * 1000) / 1000
                    log.warning("matrix: sync failed (%s); again in %.1f s", getattr(response, "message", response), wait)
                    await asyncio.sleep(min(wait, 60))
                    backoff = min(backoff * 2, 60)
                    continue
                backoff = 1.0
                await self._encryption_chores()
                await self._after_sync(response, handle_timeline=True)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop goes on; the token was not stored, the batch replays
                log.exception("matrix: sync round failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)
                if self.client is not None and self.loop is not None:
                    stored = await asyncio.to_thread(self.state.get, "sync_token")
                    if stored:
                        self.client.next_batch = stored

    async def _encryption_chores(self) -> None:
        client = self.client
        if client.olm is None:
            return
        try:
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
            await client.send_to_device_messages()
        except Exception:  # noqa: BLE001 - retried after the next sync
            log.warning("matrix: encryption key exchange failed; retried after the next sync", exc_info=True)

    async def _after_sync(self, response: Any, *, handle_timeline: bool) -> None:
        """Invites, then the timeline's events to the durable inbox, then the sync token."""
        from nio import MegolmEvent

        for room_id, info in response.rooms.invite.items():
            await self._invited(room_id, info)
        known = self._known_rooms
        rows: list[tuple[str, str, str, str]] = []  # (dedupe key, kind, payload, room id)
        skipped: list[str] = []
        undecryptable: list[tuple[str, Any]] = []
        for room_id, info in response.rooms.join.items():
            room = self.client.rooms.get(room_id)
            if room is None:
                continue
            if info.timeline.limited and handle_timeline and room_id in known:
                log.warning("matrix: %s had more events since the last sync than one sync returns; the oldest are "
                            "not handled", room_id)
            for event in info.timeline.events if handle_timeline else ():
                if isinstance(event, MegolmEvent):
                    undecryptable.append((room_id, event))
                    skipped.append(event.event_id)
                    continue
                source = getattr(event, "source", None)
                if not isinstance(source, Mapping):
                    continue
                eid = str(source.get("event_id") or "")
                if not inbound.worth_writing(source, self.view):
                    skipped.append(eid)
                    continue
                payload = json.dumps({"room": self._room_snapshot(room, source), "event": dict(source)},
                                     ensure_ascii=False)
                rows.append((inbound.dedup_key(source) or f"matrix:noid:{uuid.uuid4().hex}", str(source.get("type"))[:40],
                             payload, room_id))
        if rows:
            written = await asyncio.to_thread(self._write, rows, response.next_batch)
            for (key, _kind, _payload, _room), fresh in zip(rows, written):
                if not fresh:
                    self._processed(key.removeprefix("matrix:"))
            self.pipeline.worker.wake()
        else:
            await asyncio.to_thread(self.state.put, "sync_token", response.next_batch)
        for eid in skipped:
            self._processed(eid)
        for room_id, event in undecryptable:
            await self._undecryptable(room_id, event)
        self._known_rooms = set(self.client.rooms)
        self._syncs += 1
        assert self._sync_cond is not None
        async with self._sync_cond:
            self._sync_cond.notify_all()

    def _write(self, rows: Sequence[tuple[str, str, str, str]], next_batch: str) -> list[bool]:
        """Each event to the inbox (a duplicate writes nothing), THEN the token after them."""
        written = [self.pipeline.put(PLATFORM, key, kind, payload, tenant=self.tenant, order_key=f"{self.tenant}:{room}",
                                     wake=False) for key, kind, payload, room in rows]
        self.state.put("sync_token", next_batch)
        return written

    def _room_snapshot(self, room: Any, event: Mapping[str, Any]) -> dict[str, Any]:
        sender = str(event.get("sender") or "")
        names = {}
        for uid in {sender, str(event.get("state_key") or "")}:
            user = room.users.get(uid) if uid else None
            if user is not None and getattr(user, "display_name", None):
                names[uid] = str(user.display_name)[:200]
        own_join = event.get("type") == "m.room.member" and event.get("state_key") == self.view.user_id
        members = [uid for uid in room.users if uid not in room.invited_users][:5000] if own_join else []
        return {"id": room.room_id, "kind": self.kind_of(room), "name": (room.name or room.canonical_alias or "")[:200],
                "names": names, "members": members}

    def kind_of(self, room: Any) -> str:
        if room.room_id in self._direct:
            return "dm"
        if room.join_rule == "public":
            return "public"
        if not room.name and not room.canonical_alias and len(room.users) <= 2:
            return "dm"
        return "private"

    async def _invited(self, room_id: str, info: Any) -> None:
        inviter = ""
        direct = False
        for event in info.invite_state:
            source = getattr(event, "source", None) or {}
            if source.get("type") == "m.room.member" and source.get("state_key") == self.view.user_id:
                inviter = str(source.get("sender") or "")
                direct = bool((source.get("content") or {}).get("is_direct"))
        room_server = room_id.partition(":")[2]
        if not inviter or not self.view.allows(inviter) or (room_server and not self.view.allows("@x:" + room_server)):
            log.warning("matrix: invite to %s from %s refused: that homeserver is not allowed (MATRIX_ALLOWED_SERVERS)",
                        room_id, inviter or "someone unknown")
            await self.client.room_leave(room_id)
            return
        from nio import JoinResponse

        response = await self.client.join(room_id)
        if isinstance(response, JoinResponse):
            log.info("matrix: joined %s, invited by %s", room_id, inviter)
            if direct:
                self._direct[room_id] = inviter
                self._dm_of.setdefault(inviter, room_id)
                await asyncio.to_thread(self.state.put, "dm:" + inviter, room_id)
        else:
            log.warning("matrix: could not join %s: %s", room_id, getattr(response, "message", response))

    async def _undecryptable(self, room_id: str, event: Any) -> None:
        sender = str(getattr(event, "sender", "") or "")
        session = str(getattr(event, "session_id", "") or "")
        log.warning("matrix: event %s in %s from %s could not be decrypted (session %s)", event.event_id, room_id,
                    sender, session)
        if sender == self.view.user_id or not self.view.allows(sender):
            return
        try:
            await self.client.request_room_key(event)
        except Exception as exc:  # noqa: BLE001 - already requested, or no way to ask
            log.info("matrix: room key of session %s not requested again: %s", session, exc)
        if (room_id, session) in self._asked:
            return
        self._asked.add((room_id, session))
        room = self.client.rooms.get(room_id)
        kind = self.kind_of(room) if room is not None else "private"
        conv = ConversationRef(PLATFORM, self.tenant, room_id, kind)  # type: ignore[arg-type]
        t = self.sender.shell.translator(self.tenant, sender, room_id, private=kind == "dm")
        from bot.text import ping_marker

        reply = Reply(text=t("matrix.reshare_keys", name=ping_marker(sender)), key="matrix.reshare_keys")
        try:
            await self.sender.deliver([Outbound(reply, conv)])
        except Exception:  # noqa: BLE001 - asking is a courtesy
            log.warning("matrix: could not ask %s to re-share keys in %s", sender, room_id)

    # For the sender -------------------------------------------------------------------------
    def is_encrypted(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id) if self.client is not None else None
        return bool(room is not None and room.encrypted)

    async def room_ready(self, room_id: str) -> None:
        """Wait (a few seconds at most) until the sync has shown the room (a new direct chat)."""
        deadline = time.monotonic() + 10.0
        while room_id not in self.client.rooms:
            if time.monotonic() > deadline:
                raise Refused(f"room {room_id} is not among the bot's rooms")
            await asyncio.sleep(0.05)

    def known_direct_room(self, user_id: str) -> str | None:
        room_id = self._dm_of.get(user_id)
        if room_id is not None:
            room = self.client.rooms.get(room_id)
            if room is not None and user_id in room.users:
                return room_id
            if room is None and room_id not in self.client.invited_rooms:
                pass  # left or not synced yet: look for another
        for rid, room in self.client.rooms.items():
            if user_id in room.users and len(room.users) <= 2 and self.kind_of(room) == "dm":
                self._dm_of[user_id] = rid
                self._direct[rid] = user_id
                return rid
        return None

    async def create_direct_room(self, user_id: str) -> str | None:
        from nio import RoomCreateResponse, RoomPreset

        initial_state = [{"type": "m.room.encryption", "state_key": "",
                          "content": {"algorithm": "m.megolm.v1.aes-sha2"}}] if self.client.olm is not None else []
        response = await self.client.room_create(is_direct=True, invite=[user_id], preset=RoomPreset.trusted_private_chat,
                                                 initial_state=initial_state)
        if not isinstance(response, RoomCreateResponse):
            code = getattr(response, "status_code", "")
            if code == "M_LIMIT_EXCEEDED":
                from bot.delivery import DeliveryFailed

                raise DeliveryFailed("matrix: 429 creating a direct chat",
                                     retry_after=(getattr(response, "retry_after_ms", None) or 1000) / 1000)
            log.warning("matrix: could not open a direct chat with %s: %s", user_id, getattr(response, "message", response))
            return None
        room_id = response.room_id
        self._created.add(room_id)
        self._direct[room_id] = user_id
        self._dm_of[user_id] = room_id
        await asyncio.to_thread(self.state.put, "dm:" + user_id, room_id)
        await self._mark_direct(user_id, room_id)
        await self.room_ready(room_id)
        return room_id

    async def _mark_direct(self, user_id: str, room_id: str) -> None:
        """Add the room to the bot's `m.direct` account data (a hint for clients; best effort)."""
        from urllib.parse import quote

        mapping: dict[str, list[str]] = {}
        for room, user in self._direct.items():
            mapping.setdefault(user, []).append(room)
        path = f"/_matrix/client/v3/user/{quote(self.view.user_id, safe='')}/account_data/m.direct"
        try:
            await self.client.send("PUT", path, json.dumps(mapping),
                                   headers={"Authorization": f"Bearer {self.client.access_token}",
                                            "Content-Type": "application/json"})
        except Exception:  # noqa: BLE001
            log.info("matrix: m.direct not updated for %s", room_id)

    def remember_card(self, room_id: str, event_id: str, actions: Sequence[str]) -> None:
        with self.services.db.session(ALL_TENANTS) as s:
            self.state.put_in(s, "card:" + event_id, json.dumps(list(actions), ensure_ascii=False))
            self.state.put_in(s, "lastcard:" + room_id, event_id)

    # Outbox sender (any thread but the loop's) ------------------------------------------------
    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = SEND_SECONDS) -> T:
        loop = self.loop
        if loop is None or loop.is_closed():
            raise RuntimeError("matrix: the runtime's event loop is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("matrix: deliver() is for other threads; on the loop, await runtime.sender.deliver()")
        return asyncio.run_coroutine_threadsafe(factory(), loop).result(timeout)  # type: ignore[arg-type]

    def deliver(self, effects: Sequence[Effect], actor: str | None = None) -> None:
        """The outbox's sender for platform "matrix" (jobs: digests, notifications, retries)."""
        items = list(effects)
        self.call(lambda: self.sender.deliver(items, actor=actor))

    # Inbox processor (a worker thread) -------------------------------------------------------
    def process_row(self, row: Claimed, finish: Callable[[Session], None]) -> None:
        data = json.loads(row.payload)
        event = data.get("event") or {}
        raw_room = data.get("room") or {}
        room = inbound.Room(id=str(raw_room.get("id") or ""), kind=raw_room.get("kind") or "private",
                            name=str(raw_room.get("name") or ""), names=dict(raw_room.get("names") or {}),
                            members=tuple(raw_room.get("members") or ()))
        with self._done_lock:
            self._inflight += 1
        try:
            self._process(room, event, finish)
        finally:
            with self._done_lock:
                self._inflight -= 1
            self._processed(str(event.get("event_id") or ""))

    def _process(self, room: inbound.Room, event: Mapping[str, Any], finish: Callable[[Session], None]) -> None:
        state = self.state
        reactions: dict[str, tuple[str, str, str]] = {}
        extra: list[Callable[[Session], None]] = []
        if event.get("type") == "m.room.redaction":
            redacts = str(event.get("redacts") or (event.get("content") or {}).get("redacts") or "")
            known = state.get_json("reaction:" + redacts) if redacts else None
            if isinstance(known, list) and len(known) == 3:
                reactions[redacts] = (str(known[0]), str(known[1]), str(known[2]))
                extra.append(lambda s: state.delete_in(s, "reaction:" + redacts))
        parsed = inbound.parse(room, event, self.view, reactions)
        if parsed.ignored:
            log.info("matrix: event %s ignored: %s", event.get("event_id"), parsed.ignored)
        events = list(parsed.events)
        eid = str(event.get("event_id") or "")
        if parsed.reaction is not None:
            target, key, who = parsed.reaction
            number = rd.number_of(key)
            commands = state.get_json("card:" + target) if number else None
            if isinstance(commands, list) and number is not None and number <= len(commands):
                events = [IncomingMessage(id=eid, text=str(commands[number - 1]), sender=inbound._user(who, room, self.tenant),
                                          conversation=inbound.conversation(room, self.tenant), addressed=True,
                                          via="button")]
            else:
                remembered = json.dumps([target, key, who], ensure_ascii=False)
                extra.append(lambda s: state.put_in(s, "reaction:" + eid, remembered))
        msg = events[0] if len(events) == 1 and isinstance(events[0], IncomingMessage) else None
        if msg is not None and msg.via not in ("button", "mention"):
            if room.kind == "dm":
                session = forms.loads(state.get("form:" + msg.sender.id) or "")
                if session is not None and session.room_id == room.id:
                    self._form_answer(session, msg, finish)
                    return
            number = rd.number_of(msg.text)
            card = parsed.reply_to or (state.get("lastcard:" + room.id) if room.kind == "dm" else None)
            commands = state.get_json("card:" + card) if number and card else None
            if isinstance(commands, list) and number is not None and number <= len(commands):
                events = [replace(msg, text=str(commands[number - 1]), addressed=True, via="button", bot_mention_at=None)]
        actor = msg.sender.id if msg is not None else None
        self._handle(events, finish, extra, actor)

    def _handle(self, events: Sequence[Any], finish: Callable[[Session], None],
                extra: Sequence[Callable[[Session], None]], actor: str | None) -> None:
        work = shell.RowWork(finish)
        recorded: list[Effect] = []
        effects: list[Effect] = []

        def commit(session: Session) -> None:
            for write in extra:
                write(session)
            work.commit(session)

        def record(session: Session, produced: Sequence[Effect]) -> None:
            work.outbox = outbox.record(session, produced, self.services.clock.now(), source=PLATFORM,
                                        token=outbox.new_token(PLATFORM))
            recorded[:] = list(produced)

        if not events:
            with self.services.db.session(ALL_TENANTS) as session:
                commit(session)
            return
        for index, event in enumerate(events):
            last = index == len(events) - 1
            produced = self.bot.handle(event, in_transaction=commit, record=record) if last else self.bot.handle(event)
            effects += produced
            if isinstance(event, MembersChanged) and event.bot_joined and self.welcome and not produced \
                    and event.conversation.id not in self._created:
                effects.append(self._welcome(event.conversation))
        unrecorded = [e for e in effects if all(e is not r for r in recorded)]
        if unrecorded:
            try:
                self.deliver(unrecorded, actor)
            except Exception:  # noqa: BLE001 - profile and welcome messages are not worth a retry of the row
                log.warning("matrix: %d effect(s) outside the outbox not delivered", len(unrecorded))
        if work.outbox is not None and recorded:
            services = self.services
            outbox.deliver(services.db, services.clock, work.outbox, lambda items: self.deliver(items, actor), recorded)

    def _welcome(self, conv: ConversationRef) -> Outbound:
        t = self.sender.shell.translator(conv.tenant, conversation_id=conv.id, private=conv.kind == "dm")
        return Outbound(Reply(text=t("matrix.welcome", prefix=self.view.prefix), key="matrix.welcome"), conv)

    def _form_answer(self, session: forms.FormSession, msg: IncomingMessage, finish: Callable[[Session], None]) -> None:
        person = msg.sender
        name = "form:" + person.id
        step = forms.answer(session, msg.text)
        if step.cancelled:
            with self.services.db.session(ALL_TENANTS) as s:
                self.state.delete_in(s, name)
                finish(s)
            self.call(lambda: self.sender.say(person, session.room_id, "matrix.form_cancelled", title=session.title))
            return
        if step.error is not None:
            with self.services.db.session(ALL_TENANTS) as s:
                finish(s)
            self.call(lambda: self.sender.ask(person, session, step.error))
            return
        if session.done:
            submission = forms.submission(session, person, msg.id)
            self._handle([submission], finish, [lambda s: self.state.delete_in(s, name)], person.id)
            return
        with self.services.db.session(ALL_TENANTS) as s:
            self.state.put_in(s, name, forms.dumps(session))
            finish(s)
        self.call(lambda: self.sender.ask(person, session))
