"""Matrix round trips against a real Synapse that this benchmark starts itself
(tests/matrix/homeserver.py: installed into .venv-synapse/ by `make synapse`, on loopback).

Three paths, measured in the same run and interleaved round by round, so they see the same
machine state:
- echo: human A sends a message, human B's client receives it (the homeserver's own time:
  send, store, wake B's long-poll sync);
- bot round trip, plain room: a human sends `!causette help`, Causette's Matrix adapter
  (its sync loop, durable inbox, core, render, send) answers, the human's client receives
  the answer;
- the same in an end-to-end encrypted room (the human encrypts, the bot decrypts, answers
  encrypted, the human decrypts).
Humans are matrix-nio clients that long-poll only while waiting (tests/matrix/world.py); they
and the bot's nio client share one event loop thread (nio's encryption stores must not be used
from two threads of one process), the bot's inbox work runs in its worker threads. The bot's
database is a temporary SQLite file with no organisation loaded (help needs none).
Figures: `matrix_echo_p50_ms`, `matrix_echo_p99_ms`, `matrix_rtt_p50_ms`,
`matrix_rtt_p99_ms`, `matrix_e2ee_rtt_p50_ms`, `matrix_e2ee_rtt_p99_ms`,
`matrix_vs_echo_p99` (plain bot round trip p99 / echo p99; target ≤ 1.5) and the rounds.
BENCH_MATRIX_ROUNDS (default 100) rounds of each, after WARMUP. Without Synapse (not
installable, not starting) it prints `matrix_skipped: <reason>` instead.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

WARMUP = 10
ROUNDS = int(os.environ.get("BENCH_MATRIX_ROUNDS", "100"))


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


def _measure(report: Any, hs: Any) -> None:
    from tests.harness.matrix import BotRunner
    from tests.matrix.world import Humans, World

    world = World.build(hs, talkers=["alice", "thomas"])
    alice, bob = world.accounts["alice"], world.accounts["thomas"]
    plain = world.create_room(alice, "bench-plain", [bob])
    encrypted = world.create_room(alice, "bench-e2ee", [bob], encrypted=True)
    with tempfile.TemporaryDirectory(prefix="causette-bench-matrix-") as tmp:
        humans = Humans(world, Path(tmp) / "humans")
        bot = BotRunner(_bot(Path(tmp) / "causette.db"), world, Path(tmp) / "bot-store", loop=humans.loop)
        bot.start()
        bot.settle()
        try:
            a, b = humans["alice"], humans["thomas"]
            humans.run(b.sync(0))

            def echo(room: str) -> float:
                started = time.perf_counter()
                eid = humans.run(a.send(room, "echo"))
                got = humans.run(b.wait_for(lambda r: r.event_id == eid))
                return got[0].at - started

            def round_trip(room: str) -> float:
                started = time.perf_counter()
                mark = len(a.order)
                humans.run(a.send(room, "!causette help"))
                got = humans.run(a.wait_for(lambda r: r.room_id == room and r.sender == world.bot.user_id
                                            and r.type == "m.room.message" and r.decrypted == (room == encrypted),
                                            since=mark))
                return got[0].at - started

            paths: dict[str, Callable[[], float]] = {
                "echo": lambda: echo(plain),
                "rtt": lambda: round_trip(plain),
                "e2ee_rtt": lambda: round_trip(encrypted),
            }
            for fn in paths.values():
                for _ in range(WARMUP):
                    fn()
            samples: dict[str, list[float]] = {name: [] for name in paths}
            cpu = time.process_time()
            for _ in range(ROUNDS):
                for name, fn in paths.items():
                    samples[name].append(fn() * 1000)
            cpu = time.process_time() - cpu
        finally:
            bot.stop()
            humans.close()
    report.figure("matrix_rounds", ROUNDS)
    for name, values in samples.items():
        report.figure(f"matrix_{name}_p50_ms", statistics.median(values))
        report.figure(f"matrix_{name}_p99_ms", _percentile(values, 0.99))
    report.figure("matrix_vs_echo_p99", _percentile(samples["rtt"], 0.99) / _percentile(samples["echo"], 0.99))
    report.figure("matrix_vs_echo_p50", statistics.median(samples["rtt"]) / statistics.median(samples["echo"]))
    report.figure("matrix_bench_client_cpu_s", cpu)
