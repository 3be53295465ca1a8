"""People and rooms on a real Synapse for the Matrix tests and the benchmark, and the human
side: real matrix-nio clients (with end-to-end encryption) that send what a person types and
receive what the bot answers.

`World.build(hs)` registers the demo organisation (store/demo.py) on the homeserver once per
session: every person a user `@<handle>:causette.test`, the bot `@causette:…`, one room per
demo channel with the demo's members (#direction private), and a direct chat (m.direct, two
members) between every person who speaks in a scenario and the bot. The bot's account joins
them all before any adapter runs, as an operator's bot that accepted its invites.

`Humans` runs the people's clients on one asyncio loop in a thread (the tests stay sync).
A `Human` syncs only when asked (`wait_for`): no background sync loops, so a message in
#general does not wake sixty clients.
"""
from __future__ import annotations

import asyncio
import html
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tests.matrix.homeserver import Account, Homeserver

BOT_LOCALPART = "causette"
ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
# What a human's client asks of each sync: no presence, no ephemeral noise, enough timeline.
HUMAN_FILTER: dict[str, Any] = {"presence": {"types": []}, "account_data": {"types": ["m.direct"]},
                                "room": {"timeline": {"limit": 100}, "ephemeral": {"types": []},
                                         "state": {"lazy_load_members": True}}}


def speakers() -> list[str]:
    """Everyone who types something in a scenario step (they get a client and a direct chat)."""
    from tests.scenarios import all_scenarios

    return sorted({step.user for scenario in all_scenarios() for step in scenario.steps})


def speakers_in() -> dict[str, set[str]]:
    """Channel name → who types in it in some scenario step (on Matrix one must have joined a
    room to write there; the console lets anyone write anywhere)."""
    from tests.scenarios import all_scenarios

    found: dict[str, set[str]] = {}
    for scenario in all_scenarios():
        for step in scenario.steps:
            if step.where != "dm":
                found.setdefault(step.where.lstrip("#"), set()).add(step.user)
    return found


@dataclass
class World:
    """The organisation as it exists on the homeserver (made once per test session)."""

    hs: Homeserver
    accounts: dict[str, Account] = field(default_factory=dict)  # demo handle → account
    bot: Account | None = None
    rooms: dict[str, str] = field(default_factory=dict)         # channel name → room id
    dms: dict[str, str] = field(default_factory=dict)           # handle → direct chat with the bot
    names: dict[str, str] = field(default_factory=dict)         # handle → display name
    members: dict[str, set[str]] = field(default_factory=dict)  # room id → handles joined (besides the bot)
    seconds: float = 0.0
    _direct_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def user_id(self, handle: str) -> str:
        return self.hs.user_id(handle)

    def channel_id(self, name: str) -> str:
        return self.rooms[name]

    def handle_of(self, user_id: str) -> str:
        return user_id.split(":", 1)[0].lstrip("@")

    def member_of(self, room_id: str) -> list[str]:
        return sorted(self.members.get(room_id, ()))

    @classmethod
    def build(cls, hs: Homeserver, *, talkers: Iterable[str] | None = None) -> "World":
        from store.demo import CHANNELS, DEMO_ADMIN, channel_members, demo_people

        started = time.monotonic()
        world = cls(hs)
        people = demo_people()
        world.names = {p.handle: p.name for p in people}
        with ThreadPoolExecutor(8) as pool:
            accounts = list(pool.map(lambda p: hs.register(p.handle, displayname=p.name), people))
            world.accounts = {a.localpart: a for a in accounts}
            world.bot = hs.register(BOT_LOCALPART, displayname="Causette")
            members = channel_members(people)
            owner = world.accounts[DEMO_ADMIN]

            def create(channel: tuple[str, str, str]) -> tuple[str, str]:
                name, kind, _lang = channel
                body = {"name": name, "preset": "private_chat" if kind == "private" else "public_chat",
                        "room_alias_name": name, "invite": [world.bot.user_id]}  # type: ignore[union-attr]
                if kind == "private":
                    body["invite"] += [world.user_id(h) for h in members.get(name, []) if h != DEMO_ADMIN]
                return name, hs.api("POST", "/_matrix/client/v3/createRoom", body, token=owner.access_token)["room_id"]

            world.rooms = dict(pool.map(create, CHANNELS))
            joins = [(world.bot, room) for room in world.rooms.values()]  # type: ignore[misc]
            chosen = sorted(set(talkers if talkers is not None else speakers()))
            # Rooms hold the demo members who speak somewhere (the others are people of the
            # store who never opened Matrix): a join costs the homeserver ~40 ms, 200 of them seconds.
            joins += [(world.accounts[h], world.rooms[name]) for name, handles in members.items()
                      for h in dict.fromkeys(handles) if h != DEMO_ADMIN and (h in chosen or name == "direction")]
            if talkers is None:  # and those who write in a public room of which they are not a member
                kinds = {name: kind for name, kind, _ in CHANNELS}
                joins += [(world.accounts[h], world.rooms[name]) for name, handles in sorted(speakers_in().items())
                          for h in sorted(handles) if kinds.get(name) == "public" and h != DEMO_ADMIN
                          and h not in members.get(name, [])]
            list(pool.map(lambda j: world.join(j[0], j[1]), joins))
            for account, room in joins:
                if account is not world.bot:
                    world.members.setdefault(room, set()).add(account.localpart)
            for name, room in world.rooms.items():
                world.members.setdefault(room, set()).add(DEMO_ADMIN)
            world.dms = dict(pool.map(lambda h: (h, world.open_dm(world.accounts[h])), chosen))
        world.seconds = time.monotonic() - started
        return world

    def bot_device(self) -> Account:
        """A new login of the bot: a new device and access token."""
        assert self.bot is not None
        return self.hs.login(self.bot.localpart, self.bot.password)

    def sign_out(self, device: Account) -> None:
        """Sign a device out, as an operator removes an old install's session: the homeserver
        deletes the device and its keys, so nobody's client shares room keys with it any more
        (each test's bot is a new device: kept, they would pile up and every encrypted message
        would be shared with all of them)."""
        from tests.matrix.homeserver import MatrixError

        try:
            self.hs.api("POST", "/_matrix/client/v3/logout", {}, token=device.access_token)
        except MatrixError as exc:
            if exc.status != 401:  # already signed out
                raise

    def join(self, account: Account, room_id: str) -> None:
        self.hs.api("POST", f"/_matrix/client/v3/join/{room_id}", {}, token=account.access_token)

    def open_dm(self, account: Account, *, encrypted: bool = False) -> str:
        """A direct chat as Element opens one: is_direct, the bot invited, m.direct set; the bot joins."""
        assert self.bot is not None
        body: dict[str, Any] = {"preset": "trusted_private_chat", "is_direct": True, "invite": [self.bot.user_id]}
        if encrypted:
            body["initial_state"] = [ENCRYPTION]
        room = self.hs.api("POST", "/_matrix/client/v3/createRoom", body, token=account.access_token)["room_id"]
        self._mark_direct(account, self.bot.user_id, room)
        self.join(self.bot, room)
        self._mark_direct(self.bot, account.user_id, room)  # as a client accepting a direct invite does
        self.members[room] = {account.localpart}
        return room

    def _mark_direct(self, account: Account, other: str, room: str) -> None:
        with self._direct_lock:
            direct = self._direct(account)
            direct.setdefault(other, []).append(room)
            self.hs.api("PUT", f"/_matrix/client/v3/user/{account.user_id}/account_data/m.direct", direct,
                        token=account.access_token)

    def _direct(self, account: Account) -> dict[str, list[str]]:
        from tests.matrix.homeserver import MatrixError

        try:
            return self.hs.api("GET", f"/_matrix/client/v3/user/{account.user_id}/account_data/m.direct",
                               token=account.access_token)
        except MatrixError as exc:
            if exc.status == 404:
                return {}
            raise

    def create_room(self, owner: Account, name: str, members: Iterable[Account], *, encrypted: bool = False,
                    with_bot: bool = True) -> str:
        """A room of `owner` with `members` joined (and the bot, unless with_bot=False)."""
        assert self.bot is not None
        invited = [m.user_id for m in members] + ([self.bot.user_id] if with_bot else [])
        body: dict[str, Any] = {"name": name, "preset": "private_chat", "invite": invited}
        if encrypted:
            body["initial_state"] = [ENCRYPTION]
        room = self.hs.api("POST", "/_matrix/client/v3/createRoom", body, token=owner.access_token)["room_id"]
        for m in members:
            self.join(m, room)
        if with_bot:
            self.join(self.bot, room)
        self.members[room] = {owner.localpart, *(m.localpart for m in members)}
        return room


# The people's clients --------------------------------------------------------------------
class LoopThread:
    """An asyncio loop in a daemon thread (the nio clients live there)."""

    def __init__(self, name: str = "matrix-humans") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass(frozen=True)
class Received:
    room_id: str
    event_id: str
    sender: str
    type: str          # "m.room.message", "m.room.encrypted" (undecryptable), ...
    content: dict[str, Any]
    decrypted: bool
    at: float          # time.perf_counter() when this client's sync returned it
    ts: int = 0        # origin_server_ts

    @property
    def body(self) -> str:
        return str(self.content.get("body", ""))


class Human:
    """One person's Matrix client (matrix-nio, with its E2EE store in `store_dir`)."""

    _tx = itertools.count(1)

    def __init__(self, hs: Homeserver, account: Account, store_dir: Path, *, encryption: bool = True) -> None:
        from nio import AsyncClient, AsyncClientConfig

        store_dir.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0, encryption_enabled=encryption,
                                   store_sync_tokens=False)
        self.client = AsyncClient(hs.url, account.user_id, device_id=account.device_id, store_path=str(store_dir),
                                  config=config)
        self.account = account
        self.user_id = account.user_id
        self.received: dict[str, Received] = {}
        self.order: list[str] = []
        self.token = ""
        self._undecrypted: dict[str, Any] = {}

    async def open(self) -> None:
        self.client.restore_login(self.account.user_id, self.account.device_id, self.account.access_token)
        await self.sync(0)

    async def close(self) -> None:
        await self.client.close()

    async def sync(self, timeout_ms: int = 0) -> list[Received]:
        """One sync (long-polling up to timeout_ms), then what an E2EE client does between syncs."""
        from nio import MegolmEvent, SyncResponse

        client = self.client
        resp = await client.sync(timeout=timeout_ms, sync_filter=HUMAN_FILTER, since=self.token or None)
        if not isinstance(resp, SyncResponse):
            raise AssertionError(f"{self.user_id} sync failed: {resp}")
        now = time.perf_counter()
        self.token = resp.next_batch
        if client.olm is not None:
            await self._keys()
        got: list[Received] = self._retry_decryption(now)
        for room_id, room in resp.rooms.join.items():
            for event in room.timeline.events:
                source = getattr(event, "source", {}) or {}
                if not source.get("event_id"):
                    continue
                undecrypted = isinstance(event, MegolmEvent)
                decrypted = bool(getattr(event, "decrypted", False))
                content = source.get("content", {}) if not decrypted else _decrypted_content(event)
                ts = source.get("origin_server_ts")
                item = Received(room_id, source["event_id"], source.get("sender", ""),
                                "m.room.encrypted" if undecrypted else source.get("type", ""), content, decrypted, now,
                                ts if isinstance(ts, int) else 0)
                if item.event_id not in self.received:
                    self.received[item.event_id] = item
                    self.order.append(item.event_id)
                    if undecrypted:  # its room key may come in a later sync, as Element retries
                        self._undecrypted[item.event_id] = event
                got.append(item)
        return got

    def _retry_decryption(self, now: float) -> list[Received]:
        done: list[Received] = []
        for eid, event in list(self._undecrypted.items()):
            try:
                clear = self.client.decrypt_event(event)
            except Exception:  # noqa: BLE001 - still no key
                continue
            old = self.received[eid]
            item = Received(old.room_id, eid, old.sender, str(clear.source.get("type", "m.room.message")),
                            _decrypted_content(clear), True, now, old.ts)
            self.received[eid] = item
            del self._undecrypted[eid]
            done.append(item)
        return done

    async def _keys(self) -> None:
        from adapters.matrix.runtime import exchange_keys

        await exchange_keys(self.client)  # a person's client has the same key chores as the bot

    async def wait_for(self, match: Callable[[Received], bool], count: int = 1, timeout: float = 20.0,
                       since: int = 0) -> list[Received]:
        """Sync until `count` received events (from position `since` of `order`) match."""
        deadline = time.monotonic() + timeout
        while True:
            found = [self.received[e] for e in self.order[since:] if match(self.received[e])]
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user_id} did not receive {count} matching event(s) in {timeout} s; "
                                     f"got {found}")
            await self.sync(int(min(left, 5.0) * 1000))

    async def send(self, room_id: str, body: str, *, formatted: str = "", mentions: dict[str, Any] | None = None,
                   msgtype: str = "m.text", extra: dict[str, Any] | None = None, event_type: str = "m.room.message",
                   content: dict[str, Any] | None = None) -> str:
        """Send a message (encrypted when the room is, as Element does). Returns its event id."""
        from nio import RoomSendResponse

        if content is None:
            content = {"msgtype": msgtype, "body": body}
            if formatted:
                content.update(format="org.matrix.custom.html", formatted_body=formatted)
            if mentions is not None:
                content["m.mentions"] = mentions
            content.update(extra or {})
        room = self.client.rooms.get(room_id)
        if room is not None and room.encrypted and self.client.olm is not None:
            if self.client.should_query_keys:
                await self.client.keys_query()
            if self.client.olm.should_share_group_session(room_id):
                await self.client.share_group_session(room_id, ignore_unverified_devices=True)
        resp = await self.client.room_send(room_id, event_type, content, tx_id=f"h{next(self._tx)}-{time.time_ns()}",
                                           ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise AssertionError(f"{self.user_id} could not send to {room_id}: {resp}")
        return resp.event_id


def _decrypted_content(event: Any) -> dict[str, Any]:
    source = getattr(event, "source", {}) or {}
    # nio keeps the cleartext event's content on the decrypted event's `source`
    return dict(source.get("content", {}))


def pill(world: World, handle: str) -> tuple[str, str]:
    """(plain text, HTML) of a mention as Element writes it: the display name, and a
    matrix.to link to the user id."""
    user = world.user_id(handle)
    name = world.names.get(handle, handle)
    return name, f'<a href="https://matrix.to/#/{html.escape(user)}">{html.escape(name)}</a>'


class Humans:
    """The people's clients, on one loop thread, opened on first use."""

    def __init__(self, world: World, store_root: Path, *, encryption: bool = True) -> None:
        self.world = world
        self.store_root = store_root
        self.encryption = encryption
        self.loop = LoopThread()
        self.clients: dict[str, Human] = {}

    def __getitem__(self, handle: str) -> Human:
        human = self.clients.get(handle)
        if human is None:
            human = Human(self.world.hs, self.world.accounts[handle], self.store_root / handle, encryption=self.encryption)
            self.loop.run(human.open())
            self.clients[handle] = human
        return human

    def add(self, key: str, account: Account) -> Human:
        human = Human(self.world.hs, account, self.store_root / key, encryption=self.encryption)
        self.loop.run(human.open())
        self.clients[key] = human
        return human

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return self.loop.run(coro, timeout)

    def close(self) -> None:
        for human in self.clients.values():
            try:
                self.loop.run(human.close(), 10)
            except Exception:  # noqa: BLE001 - closing is best effort at teardown
                pass
        self.loop.stop()
