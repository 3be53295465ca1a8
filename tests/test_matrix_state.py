"""The Matrix runtime's durable state (adapters/matrix/state.py): values and the sync lease."""
from __future__ import annotations

import json
import os
import socket
from datetime import timedelta

from adapters.matrix.state import LEASE, State, dead
from bot.clock import FixedClock
from bot.context import Services


def test_values_are_kept_per_account(services: Services, clock: FixedClock) -> None:
    a, b = State(services.db, "@a:x", clock), State(services.db, "@b:x", clock)
    a.put("sync_token", "s1")
    a.put("sync_token", "s2")
    assert a.get("sync_token") == "s2" and b.get("sync_token") is None
    a.put("card:$e", json.dumps(["idea vote 1"]))
    assert a.get_json("card:$e") == ["idea vote 1"] and a.many(["card:$e", "nothing"]) == {"card:$e": '["idea vote 1"]'}
    a.delete("card:$e")
    assert a.get("card:$e") is None


def test_one_sync_loop_per_account(services: Services, clock: FixedClock) -> None:
    state = State(services.db, "@causette:x", clock)
    first, second = "elsewhere:1:aa", "elsewhere:2:bb"
    assert state.acquire_lease(first) is None
    assert state.acquire_lease(second) == first          # held: the second stays idle
    assert state.acquire_lease(first) is None            # renewed by its holder
    clock.advance(LEASE + timedelta(seconds=1))
    assert state.acquire_lease(second) is None           # expired: taken over
    assert state.acquire_lease(first) == second
    state.release_lease(first)                           # not its own: nothing happens
    assert state.acquire_lease(first) == second
    state.release_lease(second)
    assert state.acquire_lease(first) is None


def test_a_lease_of_a_dead_process_on_this_machine_is_taken_at_once(services: Services, clock: FixedClock) -> None:
    state = State(services.db, "@causette:x", clock)
    gone = f"{socket.gethostname()}:{2 ** 22 + 12345}:cc"  # above any pid in use here
    assert dead(gone) and not dead(f"{socket.gethostname()}:{os.getpid()}:dd") and not dead("otherhost:1:ee")
    assert state.acquire_lease(gone) is None
    assert state.acquire_lease("otherhost:7:ff") is None
