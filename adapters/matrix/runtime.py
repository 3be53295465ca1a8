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
key = the event id) and the sync token after them (`matrix_state`) in ONE transaction: the
token never commits without its events. A kill before that commit replays the batch: the inbox
deduplicates it. A
limited timeline (more events than a sync returns) is completed with `room_messages` back to
the previous sync (`_gap`); a room just joined starts at the bot's own join (what was said
before is history: the core's backfill imports it, nothing of it is answered).

Encrypted rooms: events arrive decrypted (nio decrypts during the sync) and their decrypted
source is what the inbox row carries. An event that cannot be decrypted is logged, its room
key is requested, and its sender is asked once per session and room to re-share the keys
(`matrix.reshare_keys`) — never a crash; when the key arrives within the hour, the event is
decrypted then and handled like any other.

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
from bot.types import ConversationRef, Effect, FetchHistory, IncomingMessage, MembersChanged, Outbound, Reply, UserRef
from store.db import ALL_TENANTS
from store import inbox as inbox_store
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
# A new bot's first sync: the rooms' state, not their past messages (never answered, and
# mostly undecryptable by a new device; the core's backfill imports history when it joins).
FIRST_SYNC_FILTER = {"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": False}},
                     "presence": {"not_types": ["*"]}}
BACKFILL_MAX = 20_000  # messages a history import reads at most
UNDECRYPTED_MAX = 1_000            # undecryptable events kept for a late key
UNDECRYPTED_KEEP_SECONDS = 3600.0
GAP_MAX = 2_000  # events of one room fetched after a limited sync
REMEMBER_DONE = 20_000
SETTLE_TYPE = "org.causette.settle"   # the private account-data marker `settle` ends the long poll with  # event ids whose processing `wait_for` can still be told about


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
        self._resuming = False                   # the first sync after a restart (rooms not "known" yet)
        self._synced_at_ms = 0                   # when the last sync's events were written down
        self._pokes = 0                          # settle(): markers written, and the last one synced back
        self._poked = 0
        self._sync_cond: asyncio.Condition | None = None
        self._lease_at = 0.0
        self._direct: dict[str, str] = {}        # room id → the person of a direct chat
        self._dm_of: dict[str, str] = {}         # person → their direct chat with the bot
        self._undecrypted: dict[str, tuple[str, Any, float]] = {}  # event id → (room, MegolmEvent, since)
        self._created: set[str] = set()          # rooms the bot opened itself (no welcome there)
        self._asked: set[tuple[str, str]] = set()  # (room, megolm session) whose sender was asked to re-share keys
        self._done: "OrderedDict[str, threading.Event]" = OrderedDict()
        self._done_lock = threading.Lock()
        self._inflight = 0
        self._known_rooms: set[str] = set()      # rooms known before the sync being handled
        self._prev_batch: dict[str, str] = {}    # room → where its history starts, back from the last sync
        self._backfills: set[asyncio.Task[None]] = set()

    # Lifecycle -----------------------------------------------------------------------------
    def attach(self, app: Any, outbox_: Any) -> None:
        """Mount on the server's aiohttp app: the app's durable inbox, its outbox, its lifecycle."""
        from adapters.server import pipeline_key

        self.pipeline = app[pipeline_key()]  # the "matrix" processor is registered once this process holds the lease
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
            if self._own_pipeline:
                self.pipeline.start()
        if self.services.deliver is None:
            self.services.deliver = self.deliver
        other = await asyncio.to_thread(self.state.acquire_lease, self.holder)
        if other is None:
            self._lease_at = time.monotonic()
            try:
                await self._activate()
            except (OSError, asyncio.TimeoutError) as exc:  # the homeserver is away: the server starts anyway
                log.error("matrix: %s unreachable (%r); retrying in the background", self.settings.matrix_homeserver, exc)
                self._task = asyncio.create_task(self._activate_later(), name="matrix-sync")
                return
            self._task = asyncio.create_task(self._sync_forever(), name="matrix-sync")
            return
        # Another process syncs this account: this one stays idle for Matrix (its server still
        # serves the other messengers). It does not even log in: the device and its encryption
        # store are the other process's while it holds the lease. It takes over once it is free.
        log.error("matrix: %s is already synced by %s: one sync loop per bot account, so this process stays "
                  "idle for Matrix (it retries every %d s, and takes over if that process stops)",
                  self.view.user_id, other, LEASE_RETRY_SECONDS)
        self._task = asyncio.create_task(self._take_over_later(), name="matrix-sync")

    async def _activate(self) -> None:
        """With the lease: log in, load the encryption store, take the inbox's Matrix rows, sync once."""
        if self.client is None:
            await self._login()
        self.pipeline.register(PLATFORM, self.process_row)
        await self._initial_sync()

    async def _activate_later(self) -> None:
        wait = 2.0
        while not self._stopping:
            await asyncio.sleep(wait)
            try:
                await self._renew_lease()
                await self._activate()
            except (OSError, asyncio.TimeoutError) as exc:
                wait = min(wait * 2, 60.0)
                log.warning("matrix: %s still unreachable (%r); again in %.0f s", self.settings.matrix_homeserver, exc, wait)
                continue
            await self._sync_forever()
            return

    async def _take_over_later(self) -> None:
        await asyncio.sleep(LEASE_RETRY_SECONDS)
        await self._wait_for_lease(quiet=True)
        if self._stopping:
            return
        await self._activate()
        await self._sync_forever()

    async def ready(self, timeout: float = 30.0) -> bool:
        """True once the first sync is done (at once after `start()` unless another process
        held the account's sync lease)."""
        try:
            await asyncio.wait_for(self._first_sync.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop syncing, let the inbox finish what was written, close the client."""
        self._stopping = True
        for task in list(self._backfills):
            task.cancel()
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
        """True once everything the homeserver had when this was called has been synced and
        processed (for steps expecting no reply). It does not wait out the long poll: the bot
        writes a private account-data marker (`org.causette.settle`), which ends the running
        sync at once, and waits for the sync response carrying it (it covers every event
        stored before the marker), then for the inbox to be drained."""
        assert self._sync_cond is not None
        deadline = time.monotonic() + timeout
        self._pokes += 1
        mark = self._pokes
        await self._poke(mark)
        async with self._sync_cond:
            try:
                await asyncio.wait_for(self._sync_cond.wait_for(lambda: self._poked >= mark), timeout)
            except asyncio.TimeoutError:
                return False
        while time.monotonic() < deadline:
            if not self.pipeline.worker.busy() and not self._inflight and \
                    await asyncio.to_thread(self.pipeline.worker.drain, max(0.0, deadline - time.monotonic())):
                return True
            await asyncio.sleep(0.01)
        return False

    async def _poke(self, mark: int) -> None:
        from urllib.parse import quote

        path = f"/_matrix/client/v3/user/{quote(self.view.user_id, safe='')}/account_data/{SETTLE_TYPE}"
        await self.client.send("PUT", path, json.dumps({"mark": mark, "holder": self.holder}),
                               headers={"Authorization": f"Bearer {self.client.access_token}",
                                        "Content-Type": "application/json"})

    def _settle_marks(self, response: Any) -> None:
        for event in getattr(response, "account_data_events", None) or ():
            if getattr(event, "type", "") == SETTLE_TYPE:
                content = getattr(event, "content", None) or {}
                if content.get("holder") == self.holder and isinstance(content.get("mark"), int):
                    self._poked = max(self._poked, content["mark"])

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
    async def _wait_for_lease(self, quiet: bool = False) -> None:
        warned = quiet
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
            self.pipeline.processors.pop(PLATFORM, None)
            return False
        self._lease_at = time.monotonic()
        return True

    # Sync ------------------------------------------------------------------------------------
    async def _initial_sync(self) -> None:
        from nio import SyncResponse

        token = await asyncio.to_thread(self.state.get, "sync_token")
        synced_at = await asyncio.to_thread(self.state.get, "synced_at")
        self._synced_at_ms = int(synced_at) if synced_at and synced_at.isdigit() else int(time.time() * 1000)
        self._resuming = bool(token)
        while True:
            response = await self.client.sync(timeout=0, sync_filter=SYNC_FILTER if token else FIRST_SYNC_FILTER,
                                              since=token or None, full_state=True)
            if isinstance(response, SyncResponse):
                break
            wait = (getattr(response, "retry_after_ms", None) or 2000) / 1000
            log.warning("matrix: first sync failed (%s); again in %.1f s", getattr(response, "message", response), wait)
            await asyncio.sleep(min(wait, 30))
        await self._encryption_chores()
        try:
            await self._after_sync(response, handle_timeline=bool(token))
        finally:
            self._resuming = False
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
                    self.pipeline.register(PLATFORM, self.process_row)
                    stored = await asyncio.to_thread(self.state.get, "sync_token")
                    if stored:  # the other process synced meanwhile: go on from what it wrote down
                        self.client.next_batch = stored
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
            await exchange_keys(client)
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
            if info.timeline.prev_batch:
                self._prev_batch[room_id] = info.timeline.prev_batch
            events = list(info.timeline.events) if handle_timeline else []
            if info.timeline.limited and handle_timeline and (room_id in known or self._resuming) \
                    and info.timeline.prev_batch:
                events = await self._gap(room_id, info.timeline.prev_batch) + events
            if room_id not in known:  # just joined: what was said before the bot came is history (backfill), not live
                own = [n for n, e in enumerate(events) if self._own_join(getattr(e, "source", None) or {})]
                if own:
                    skipped += [str(getattr(e, "event_id", "") or "") for e in events[:own[-1]]]
                    events = events[own[-1]:]
            for event in events:
                if isinstance(event, MegolmEvent):
                    undecryptable.append((room_id, event))
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
            for receipt_event in info.ephemeral if handle_timeline else ():
                for receipt in getattr(receipt_event, "receipts", None) or ():
                    if getattr(receipt, "receipt_type", "") != "m.read":
                        continue
                    source = {"type": "m.receipt", "content": {receipt.event_id: {"m.read": {
                        receipt.user_id: {"ts": int(receipt.timestamp or 0)}}}}}
                    if not inbound.worth_writing(source, self.view):
                        continue
                    snapshot = self._room_snapshot(room, {"sender": receipt.user_id})
                    rows.append((inbound.receipt_key(room_id, receipt.event_id, receipt.user_id), "m.receipt",
                                 json.dumps({"room": snapshot, "event": source}, ensure_ascii=False), room_id))
        rows += self._decrypted_late()
        if rows:
            written = await asyncio.to_thread(self._write, rows, response.next_batch)
            for (key, _kind, _payload, _room), fresh in zip(rows, written):
                if not fresh:
                    self._processed(key.removeprefix("matrix:"))
        else:
            await asyncio.to_thread(self._store_token, response.next_batch)
        for eid in skipped:
            self._processed(eid)
        for room_id, event in undecryptable:
            try:
                await self._undecryptable(room_id, event)
            finally:
                self._processed(event.event_id)
        self._known_rooms = set(self.client.rooms)
        self._settle_marks(response)
        self._syncs += 1
        assert self._sync_cond is not None
        async with self._sync_cond:
            self._sync_cond.notify_all()

    def _decrypted_late(self) -> list[tuple[str, str, str, str]]:
        """Events that could not be decrypted when they arrived, now that their room key came
        (re-shared or forwarded): decrypted and written like any event. Kept for an hour."""
        rows: list[tuple[str, str, str, str]] = []
        now = time.monotonic()
        for eid, (room_id, event, since) in list(self._undecrypted.items()):
            if now - since > UNDECRYPTED_KEEP_SECONDS:
                del self._undecrypted[eid]
                continue
            try:
                decrypted = self.client.decrypt_event(event)
            except Exception:  # noqa: BLE001 - still no key
                continue
            del self._undecrypted[eid]
            source = getattr(decrypted, "source", None)
            room = self.client.rooms.get(room_id)
            if not isinstance(source, Mapping) or room is None or not inbound.worth_writing(source, self.view):
                continue
            log.info("matrix: event %s in %s decrypted once its key arrived", eid, room_id)
            rows.append((inbound.dedup_key(source) or f"matrix:noid:{uuid.uuid4().hex}", str(source.get("type"))[:40],
                         json.dumps({"room": self._room_snapshot(room, source), "event": dict(source)}, ensure_ascii=False),
                         room_id))
        return rows

    def _own_join(self, source: Mapping[str, Any]) -> bool:
        """The bot's own arrival in a room (not a profile change of a member already there)."""
        if source.get("type") != "m.room.member" or source.get("state_key") != self.view.user_id:
            return False
        content = source.get("content") if isinstance(source.get("content"), Mapping) else {}
        unsigned = source.get("unsigned") if isinstance(source.get("unsigned"), Mapping) else {}
        prev = unsigned.get("prev_content") if isinstance(unsigned.get("prev_content"), Mapping) else {}
        return content.get("membership") == "join" and prev.get("membership") != "join"

    async def _gap(self, room_id: str, prev_batch: str) -> list[Any]:
        """The events a limited sync left out of a room the bot was already following: paged
        back from the timeline's start down to the previous sync (its time, less a minute),
        GAP_MAX at most, oldest first. Duplicates of what was written are dropped by the inbox."""
        from nio import MessageDirection, RoomMessagesResponse

        since_ms = self._synced_at_ms - 60_000
        found: list[Any] = []
        token: str | None = prev_batch
        while token and len(found) < GAP_MAX:
            response = await self.client.room_messages(room_id, start=token, direction=MessageDirection.back, limit=100)
            if not isinstance(response, RoomMessagesResponse):
                log.warning("matrix: the events %s missed in %s could not be read: %s", "a limited sync", room_id,
                            getattr(response, "message", response))
                break
            done = False
            for event in response.chunk:
                source = getattr(event, "source", None) or {}
                if int(source.get("origin_server_ts") or 0) < since_ms:
                    done = True
                    break
                found.append(event)
            if done or not response.chunk or response.end in (None, token):
                break
            token = response.end
        if len(found) >= GAP_MAX:
            log.warning("matrix: more than %d events missed in %s while away; the oldest are not handled", GAP_MAX, room_id)
        log.info("matrix: %d event(s) of %s fetched that a limited sync left out", len(found), room_id)
        return list(reversed(found))

    def _write(self, rows: Sequence[tuple[str, str, str, str]], next_batch: str) -> list[bool]:
        """Each event to the inbox (a duplicate writes nothing) and the token after them, in ONE
        transaction: the token never commits without its events (a kill before the commit
        replays the batch; the inbox drops what an earlier attempt wrote), and one commit
        instead of one per event plus one for the token. Then a worker is woken from this
        thread, without a hop back to the event loop first."""
        db = self.services.db
        now = self.services.clock.now()
        now_ms = int(time.time() * 1000)
        with db.priority(), db.session(ALL_TENANTS) as s:  # priority: ahead of the workers' transactions
            written = [inbox_store.put_in(s, PLATFORM, key, kind, payload, now, tenant=self.tenant,
                                          order_key=f"{self.tenant}:{room}") for key, kind, payload, room in rows]
            self.state.put_all_in(s, {"sync_token": next_batch, "synced_at": str(now_ms)})
        self._synced_at_ms = now_ms
        if any(written):
            self.pipeline.worker.wake()
        return written

    def _store_token(self, next_batch: str) -> None:
        now_ms = int(time.time() * 1000)
        with self.services.db.session(ALL_TENANTS) as s:
            self.state.put_all_in(s, {"sync_token": next_batch, "synced_at": str(now_ms)})
        self._synced_at_ms = now_ms

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
        if not inbound.invite_allowed(room_id, inviter, self.view):
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
        if len(self._undecrypted) < UNDECRYPTED_MAX:
            self._undecrypted[event.event_id] = (room_id, event, time.monotonic())
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

    def direct_person(self, room_id: str) -> str | None:
        """The person of a direct chat (the reader of what is posted there), when known."""
        person = self._direct.get(room_id)
        if person is None and self.client is not None and room_id in self.client.rooms:
            others = [u for u in self.client.rooms[room_id].users if u != self.view.user_id]
            person = others[0] if len(others) == 1 else None
        return person

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

    def created(self, room_id: str) -> None:
        """A room the bot opened itself: no welcome there when its own join arrives."""
        self._created.add(room_id)

    # History ---------------------------------------------------------------------------------
    def backfill(self, request: FetchHistory) -> None:
        """Import a room's history back to `request.since`, in a task of the loop's own (a
        delivery does not wait for it)."""
        assert self.loop is not None
        def spawn() -> None:
            task = self.loop.create_task(self._backfill(request), name="matrix-backfill")  # type: ignore[union-attr]
            self._backfills.add(task)
            task.add_done_callback(self._backfills.discard)
        self.loop.call_soon_threadsafe(spawn)

    async def _backfill(self, request: FetchHistory) -> None:
        """Page the room's messages backwards (`room_messages`, 100 at a time) down to
        `since`, each one handed to the core as a backfill (never answered); the requester's
        direct chat shows the progress, edited in place, then how many messages were read and
        how many were new to the index. Messages the bot has no keys for are skipped."""
        from nio import MegolmEvent, MessageDirection, RoomMessagesResponse

        from bot.text import link_marker

        conv = request.conversation
        person = request.requested_by
        since_ms = int(request.since.timestamp() * 1000)
        count = 0
        anchor = f"backfill:{conv.id}:{since_ms}"
        channel = link_marker(conv.id)

        async def tell(key: str, **params: object) -> None:
            if person is None:
                return
            t = self.sender.shell.translator(conv.tenant, person.id, None, private=True)
            try:
                await self.sender.deliver([Outbound(Reply(text=t(key, channel=channel, **params), key=key), person,
                                                    anchor=anchor)])
            except Exception:  # noqa: BLE001 - the progress is a courtesy
                log.warning("matrix: backfill progress of %s not shown", conv.id)

        before = await asyncio.to_thread(self._indexed, conv)
        await tell("matrix.backfill_progress", count=0)
        token = self._prev_batch.get(conv.id)
        room = inbound.Room(conv.id, conv.kind, conv.name)
        try:
            while token and count < BACKFILL_MAX:
                response = await self.client.room_messages(conv.id, start=token, direction=MessageDirection.back, limit=100)
                if not isinstance(response, RoomMessagesResponse):
                    wait = getattr(response, "retry_after_ms", None)
                    if wait and wait <= 10_000:
                        await asyncio.sleep(wait / 1000)
                        continue
                    raise Refused(str(getattr(response, "message", response))[:200])
                batch: list[IncomingMessage] = []
                done = False
                for event in response.chunk:
                    source = getattr(event, "source", None)
                    if isinstance(event, MegolmEvent) or not isinstance(source, Mapping):
                        continue
                    if int(source.get("origin_server_ts") or 0) < since_ms:
                        done = True
                        break
                    if source.get("type") != "m.room.message" or not inbound.worth_writing(source, self.view):
                        continue
                    for parsed in inbound.parse(room, source, self.view).events:
                        if isinstance(parsed, IncomingMessage):
                            batch.append(replace(parsed, addressed=False, backfill=True, via="message", bot_mention_at=None))
                for msg in reversed(batch):
                    try:
                        effects = await asyncio.to_thread(self.bot.handle, msg)
                        if effects:
                            await self.sender.deliver(effects)
                    except Exception as exc:  # noqa: BLE001 - what an old message triggers does not stop the import
                        log.warning("matrix: backfill of %s: %r", conv.id, exc)
                    count += 1
                await tell("matrix.backfill_progress", count=count)
                if done or not response.end or response.end == token or not response.chunk:
                    break
                token = response.end
            added = max(0, await asyncio.to_thread(self._indexed, conv) - before)
            log.info("matrix: history of %s imported: %d message(s) read, %d new to the index", conv.id, count, added)
            await tell("matrix.backfill_done", count=count, added=added)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("matrix: backfill of %s stopped: %r", conv.id, exc)
            await tell("matrix.backfill_failed", count=count)

    def _indexed(self, conv: ConversationRef) -> int:
        from sqlalchemy import func, select

        from store.models.core import Conversation
        from store.models.social import Message

        with self.services.db.session(conv.tenant, readonly=True) as session:
            found = session.scalar(select(func.count(Message.id)).join(Conversation, Conversation.id == Message.conversation_id)
                                   .where(Conversation.tenant == conv.tenant, Conversation.external_id == conv.id))
        return int(found or 0)

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
        """The outbox's sender for platform "matrix" (jobs: digests, notifications, retries). A
        process that does not hold the sync lease cannot send: its effects are retried later
        (the durable outbox), by whichever process sends them then."""
        items = list(effects)
        if self.client is None or not self._first_sync.is_set():
            from bot.delivery import DeliveryFailed

            raise DeliveryFailed("matrix: this process does not run the account's sync loop", failed=items,
                                 retry_after=LEASE_RETRY_SECONDS)
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
            number = rd.number_of(msg.text)
            # A number in reply to a card presses its button, even in the middle of a form (the
            # reply says which message it answers); a bare number in the direct chat answers the
            # form in progress, else presses the last card posted there.
            pressed = state.get_json("card:" + parsed.reply_to) if number and parsed.reply_to else None
            if room.kind == "dm" and not isinstance(pressed, list):
                session = forms.loads(state.get("form:" + msg.sender.id) or "")
                if session is not None and session.room_id == room.id:
                    self._form_answer(session, msg, finish)
                    return
            card = parsed.reply_to or (state.get("lastcard:" + room.id) if room.kind == "dm" else None)
            commands = pressed if isinstance(pressed, list) else state.get_json("card:" + card) if number and card else None
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


async def exchange_keys(client: Any) -> None:
    """One round of nio's end-to-end key chores after a sync: upload our one-time keys, query
    and claim the devices we lack, send the to-device messages waiting (room keys among them)."""
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())
    await client.send_to_device_messages()
