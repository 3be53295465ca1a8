"""Matrix round trips against a real Synapse that this benchmark starts itself
(tests/matrix/homeserver.py: installed into .venv-synapse/ by `make synapse`, on loopback).

What is compared. The bot's round trip is TWO homeserver passes (the person's message to the
bot's sync, the bot's answer to the person's sync) plus the bot's own work; a message from one
person to another is ONE pass. Dividing the first by the second would make 2× a floor, not a
result. So the comparator is a round trip too: an echo responder, a minimal matrix-nio client
that syncs continuously as the bot does (same long-poll timeout, same filter, the same
encryption chores after each sync) and answers every message at once (no database, no
processing). Four paths, each in a direct chat of two (the person and the bot, or the person
and the responder: in a direct chat the bot answers `help` where it was asked, in one message;
in a room help is private, so it goes to the person's direct chat and a short acknowledgement
to the room, two sends), measured in the same run and interleaved round by round, so they see
the same machine state:
- echo round trip, plain room: person A sends, the responder answers, A's client receives
  the answer (`matrix_echo_rt_*`); the responder's sync returning A's message gives, in the
  same round, the one-pass echo (`matrix_echo_*`: send → the other client has it);
- bot round trip, plain room: A sends `!causette help`, Causette's Matrix adapter (its sync
  loop, durable inbox, core, render, send) answers, A's client receives the answer (`matrix_rtt_*`);
- the same two in an end-to-end encrypted room (A encrypts; the responder or the bot decrypts,
  answers encrypted; A decrypts): `matrix_echo_rt_e2ee_*`, `matrix_e2ee_rtt_*`.
Person A's client does exactly the same thing on both paths: send, then sync (long-polling)
until the answer is there. The responder and the bot share the people's event loop thread
(nio's encryption stores must not be used from two threads of one process), the bot's inbox
work runs in its worker threads. The bot's database is a temporary SQLite file with no
organisation loaded (help needs none).

Figures: p50 and p99 of each path, then
- `matrix_vs_echo_p99`: bot round trip p99 / echo round trip p99, plain rooms (issue #19's
  target: the bot adds at most 1.5× the homeserver's own echo time, i.e. ≤ 1.5);
- `matrix_e2ee_vs_echo_p99`: the same in encrypted rooms;
- `matrix_vs_echo_one_pass_p99`: bot round trip p99 / ONE-pass echo p99 (the former
  definition, printed so nobody compares the wrong pair: ≥ 2 by construction);
- `matrix_bot_added_p50_ms`/`_p99_ms`: the bot's own time in the plain round trip, from its
  sync returning the message to its answer's PUT leaving (what the responder does in ~0 ms),
  and the stages of it, `matrix_stage_<stage>_p50_ms`/`_p99_ms`: `written` (sync returned →
  the event durable in the inbox), `claimed` (→ a worker has it), `handled` (→ core done,
  reply and row committed), `sending` (→ rendered, the PUT leaves), `sent` (the PUT itself);
- `matrix_bot_pass1_*` (send → the bot's sync has it), `matrix_bot_pass2_*` (the bot's PUT
  leaves → the person's client has it), `matrix_echo_pass2_*` and `matrix_echo_added_*`
  (the responder's: its PUT → the person; its sync → its PUT): the homeserver's two passes
  on each path, to see that they match and the difference is the bot's own work.
BENCH_MATRIX_ROUNDS (default 200: a p99 of 100 samples is their second worst) rounds of each,
after WARMUP. Without Synapse (not installable, not starting) it prints `matrix_skipped:
<reason>` instead.

Known bias: the bot, the person's client and the responder share one event loop (above), so
the person's client's work competes with the bot's on that loop, which a deployed bot never
sees; the responder does almost nothing on the loop, so this bias falls on the bot's side.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

WARMUP = 10
ROUNDS = int(os.environ.get("BENCH_MATRIX_ROUNDS", "200"))
ECHO_BODY = "echo"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(report: Any) -> None:
    from tests.matrix.homeserver import Homeserver, SynapseUnavailable, scratch_dir

    hs = Homeserver(scratch_dir("causette-bench-synapse-"))
    try:
        hs.start()
    except SynapseUnavailable as exc:
        hs.remove()
        report.figure("matrix_skipped", str(exc).replace("\n", " ")[:300])
        return
    try:
        _measure(report, hs)
    finally:
        hs.remove()


def _bot(path: Path) -> Any:
    from bot.clock import SystemClock
    from bot.config import Settings
    from bot.context import Services
    from bot.core import Bot
    from bot.i18n import Prompts
    from handlers import build_registry
    from store.db import Database

    db = Database(f"sqlite:///{path}")
    db.upgrade()
    settings = Settings(database_url=f"sqlite:///{path}", default_locale="en")
    return Bot(Services(settings=settings, db=db, prompts=Prompts.load(), clock=SystemClock(), registry=build_registry()))


class Responder:
    """The echo round trip's other end: a matrix-nio client that syncs continuously as the
    bot's runtime does (adapters/matrix/runtime.py: the same filter and long-poll timeout, the
    same encryption chores after each sync) and answers each person's `echo` at once, in a
    task of its own, as the bot's answer is sent from the loop while its sync goes on. No
    database, no processing: the homeserver's own round trip."""

    def __init__(self, hs: Any, account: Any, store: Path, sync_timeout_ms: int) -> None:
        from nio import AsyncClient, AsyncClientConfig

        store.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2, encryption_enabled=True,
                                   store_sync_tokens=False, request_timeout=60)
        self.client = AsyncClient(hs.url, account.user_id, device_id=account.device_id, store_path=str(store),
                                  config=config)
        self.account = account
        self.sync_timeout_ms = sync_timeout_ms
        self.synced: dict[str, float] = {}   # event id → perf_counter when this client's sync returned it
        self.answering: dict[str, float] = {}  # event id → perf_counter when its answer's PUT started
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        from adapters.matrix.runtime import FIRST_SYNC_FILTER

        client = self.client
        client.restore_login(self.account.user_id, self.account.device_id, self.account.access_token)
        if client.should_upload_keys:
            await client.keys_upload()
        await client.sync(timeout=0, sync_filter=FIRST_SYNC_FILTER, full_state=True)
        await self._chores()
        self._task = asyncio.create_task(self._loop(), name="bench-echo-responder")

    async def stop(self) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._tasks] if t is not None), return_exceptions=True)
        await self.client.close()

    async def _chores(self) -> None:
        from adapters.matrix.runtime import exchange_keys

        await exchange_keys(self.client)  # the bot's own chores, so both sides do the same work

    async def _loop(self) -> None:
        from nio import RoomMessageText, SyncResponse

        from adapters.matrix.runtime import SYNC_FILTER

        client = self.client
        while True:
            response = await client.sync(timeout=self.sync_timeout_ms, sync_filter=SYNC_FILTER, since=client.next_batch)
            now = time.perf_counter()
            if not isinstance(response, SyncResponse):
                await asyncio.sleep(0.1)
                continue
            await self._chores()
            for room_id, info in response.rooms.join.items():
                for event in info.timeline.events:
                    if isinstance(event, RoomMessageText) and event.sender != self.account.user_id \
                            and event.body == ECHO_BODY:
                        self.synced[event.event_id] = now
                        task = asyncio.create_task(self._answer(room_id, event.event_id))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)

    async def _answer(self, room_id: str, event_id: str) -> None:
        self.answering[event_id] = time.perf_counter()
        await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.notice", "body": "echo back"},
                                    ignore_unverified_devices=True)


class Stages:
    """Where a message spends time in the bot: hooks on one runtime's methods (this benchmark
    only), each noting when the current round's message passed. One message at a time."""

    NAMES = ("synced", "written", "claimed", "handled", "sending", "sent")

    def __init__(self, runtime: Any, sender_id: str) -> None:
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()
        self.sender_id = sender_id
        self._hook(runtime)

    def reset(self) -> None:
        with self._lock:
            self.at = {}

    def _mark(self, name: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self.at.setdefault(name, now)

    def _hook(self, runtime: Any) -> None:
        client = runtime.client
        processors = runtime.pipeline.processors  # process_row was registered before these hooks
        sync, write, process_row, deliver, room_send = (client.sync, runtime._write, processors["matrix"],
                                                        runtime.deliver, client.room_send)
        stages = self

        async def hooked_sync(*args: Any, **kwargs: Any) -> Any:
            response = await sync(*args, **kwargs)
            rooms = getattr(getattr(response, "rooms", None), "join", {}) or {}
            if any(getattr(e, "sender", "") == stages.sender_id for info in rooms.values() for e in info.timeline.events):
                stages._mark("synced")
            return response

        def hooked_write(*args: Any, **kwargs: Any) -> Any:
            result = write(*args, **kwargs)
            stages._mark("written")
            return result

        def hooked_process_row(*args: Any, **kwargs: Any) -> Any:
            stages._mark("claimed")
            return process_row(*args, **kwargs)

        def hooked_deliver(*args: Any, **kwargs: Any) -> Any:
            stages._mark("handled")
            return deliver(*args, **kwargs)

        async def hooked_room_send(*args: Any, **kwargs: Any) -> Any:
            stages._mark("sending")
            response = await room_send(*args, **kwargs)
            stages._mark("sent")
            return response

        client.sync, runtime._write, processors["matrix"], runtime.deliver, client.room_send = (
            hooked_sync, hooked_write, hooked_process_row, hooked_deliver, hooked_room_send)


def _direct_chat(world: Any, person: Any, other: Any, *, encrypted: bool) -> str:
    """A direct chat of `person` with `other` (not the bot), opened as World.open_dm opens one."""
    from tests.matrix.world import ENCRYPTION

    body: dict[str, Any] = {"preset": "trusted_private_chat", "is_direct": True, "invite": [other.user_id]}
    if encrypted:
        body["initial_state"] = [ENCRYPTION]
    room = world.hs.api("POST", "/_matrix/client/v3/createRoom", body, token=person.access_token)["room_id"]
    world.join(other, room)
    return str(room)


def _measure(report: Any, hs: Any) -> None:
    from tests.harness.matrix import BotRunner
    from tests.matrix.world import Humans, World

    world = World.build(hs, talkers=["alice"])
    alice = world.accounts["alice"]
    echo_account = hs.register("bench-echo", displayname="Echo")
    # Direct chats (two members, no name, as Element opens them): there the bot answers `help`
    # where it was asked, one message (in a room, help is private: the answer goes to the
    # person's direct chat, then a short acknowledgement to the room, two sends).
    rooms = {
        "rtt": world.open_dm(alice),
        "e2ee_rtt": world.open_dm(alice, encrypted=True),
        "echo_rt": _direct_chat(world, alice, echo_account, encrypted=False),
        "echo_rt_e2ee": _direct_chat(world, alice, echo_account, encrypted=True),
    }
    with tempfile.TemporaryDirectory(prefix="causette-bench-matrix-") as tmp:
        humans = Humans(world, Path(tmp) / "humans")
        bot = BotRunner(_bot(Path(tmp) / "causette.db"), world, Path(tmp) / "bot-store", loop=humans.loop)
        bot.start()
        bot.settle()
        responder = Responder(hs, echo_account, Path(tmp) / "echo-store", bot.runtime.sync_timeout_ms)
        humans.run(responder.start())
        stages = Stages(bot.runtime, alice.user_id)
        one_pass: list[float] = []
        added: list[float] = []
        passes: dict[str, list[float]] = {"echo_pass2": [], "echo_added": [], "bot_pass1": [], "bot_pass2": []}
        stage_ms: dict[str, list[float]] = {name: [] for name in Stages.NAMES[1:]}
        try:
            a = humans["alice"]
            humans.run(a.sync(0))

            def round_trip(path: str, keep: bool) -> float:
                room = rooms[path]
                echo = path.startswith("echo")
                answerer = echo_account.user_id if echo else world.bot.user_id  # type: ignore[union-attr]
                stages.reset()
                mark = len(a.order)
                started = time.perf_counter()
                eid = humans.run(a.send(room, ECHO_BODY if echo else "!causette help"))
                got = humans.run(a.wait_for(lambda r: r.room_id == room and r.sender == answerer
                                            and r.type == "m.room.message" and r.decrypted == ("e2ee" in path),
                                            since=mark))
                if keep and path == "echo_rt":
                    one_pass.append((responder.synced[eid] - started) * 1000)
                    passes["echo_pass2"].append((got[0].at - responder.answering[eid]) * 1000)
                    passes["echo_added"].append((responder.answering[eid] - responder.synced[eid]) * 1000)
                if keep and path == "rtt":
                    at = dict(stages.at)
                    if all(name in at for name in Stages.NAMES):
                        passes["bot_pass1"].append((at["synced"] - started) * 1000)
                        passes["bot_pass2"].append((got[0].at - at["sending"]) * 1000)
                        added.append((at["sending"] - at["synced"]) * 1000)
                        for before, after in zip(Stages.NAMES, Stages.NAMES[1:]):
                            stage_ms[after].append((at[after] - at[before]) * 1000)
                return got[0].at - started

            paths: dict[str, Callable[[bool], float]] = {
                name: (lambda keep, name=name: round_trip(name, keep)) for name in ("echo_rt", "rtt", "echo_rt_e2ee", "e2ee_rtt")}
            for fn in paths.values():
                for _ in range(WARMUP):
                    fn(False)
            samples: dict[str, list[float]] = {name: [] for name in paths}
            cpu = time.process_time()
            for _ in range(ROUNDS):
                for name, fn in paths.items():
                    samples[name].append(fn(True) * 1000)
            cpu = time.process_time() - cpu
        finally:
            humans.run(responder.stop())
            bot.stop()
            humans.close()
    samples["echo"] = one_pass
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    p99 = {name: _percentile(values, 0.99) for name, values in samples.items()}
    report.figure("matrix_rounds", ROUNDS)
    for name in ("echo", "echo_rt", "rtt", "echo_rt_e2ee", "e2ee_rtt"):
        report.figure(f"matrix_{name}_p50_ms", p50[name])
        report.figure(f"matrix_{name}_p99_ms", p99[name])
    report.figure("matrix_vs_echo_p99", p99["rtt"] / p99["echo_rt"])
    report.figure("matrix_vs_echo_p50", p50["rtt"] / p50["echo_rt"])
    report.figure("matrix_e2ee_vs_echo_p99", p99["e2ee_rtt"] / p99["echo_rt_e2ee"])
    report.figure("matrix_vs_echo_one_pass_p99", p99["rtt"] / p99["echo"])
    if added:
        report.figure("matrix_bot_added_p50_ms", statistics.median(added))
        report.figure("matrix_bot_added_p99_ms", _percentile(added, 0.99))
        for name, values in stage_ms.items():
            report.figure(f"matrix_stage_{name}_p50_ms", statistics.median(values))
            report.figure(f"matrix_stage_{name}_p99_ms", _percentile(values, 0.99))
    for name, values in passes.items():
        if values:
            report.figure(f"matrix_{name}_p50_ms", statistics.median(values))
            report.figure(f"matrix_{name}_p99_ms", _percentile(values, 0.99))
    report.figure("matrix_bench_client_cpu_s", cpu)
