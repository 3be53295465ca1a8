"""The inbox worker: drains the durable inbox (store/inbox.py) in background threads.

Adapters write each delivery with `store.inbox.put` before acknowledging it, then call
`InboxWorker.wake()`, which releases one idle thread (a thread whose claim came back full
wakes another: a burst is worked by all of them). A worker claims due rows with a lease and hands each to its platform's
processor with a `finish(session)` callback; the processor passes `finish` to
`Bot.handle(..., in_transaction=finish)` so the row is marked done by the transaction that
does the work. A processor that returns without calling `finish` (nothing to store: an event
Causette ignores) has its row marked done by the worker. An exception means "try again
later": the row backs off, and is set aside (poison) after `store.inbox.MAX_ATTEMPTS`.

A processor marked `bot.unit.batched` (its work goes through `bot.unit.unit` and it sends
only through `bot.unit.after_commit`) has the rows of a claim processed in ONE transaction:
one commit per batch instead of one per row, the rows marked done together just before it.
It is first tried without savepoints; when anything fails it is rolled back and done again,
each row in a savepoint, so a failing row rolls back alone; the others commit, then their
replies go out (bot/unit.py).

On start, a worker picks up whatever a crashed process left behind: pending rows, and rows
whose lease expired with their worker.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.metrics import Metrics
from bot.unit import Batch, batch_row, batchable, run_kept, unit
from store import inbox as inbox_store
from store import memo
from store.db import ALL_TENANTS, Database
from store.inbox import Claimed, LeaseLost
from store.transient import is_transient

log = logging.getLogger(__name__)
Finish = Callable[[Session], None]
Processor = Callable[[Claimed, Finish], None]


class _Doomed(Exception):
    """An optimistic batch failed somewhere: roll it back (bot/unit.py)."""


BATCH = 16
"""Rows a claim takes (whole conversations). Per ambient message on PostgreSQL: 8 → 3.9 ms of
CPU and 10.6 statements, 16 → 3.0 ms and 9.2 (the claim, the commit and the reads a batch
makes once shared by twice as many), 32 → 2.5 ms and 8.4, but a batch twice as long holds
SQLite's write turn twice as long before an acknowledgement gets it, and keeps its
conversations from the other workers twice as long."""
DEEP_BATCH = 64
"""On PostgreSQL, where a batch holds no lock others wait for (its conversations aside), a
thread whose claim came back full takes twice as many rows next time, up to this: a deep
backlog is worked in fewer, longer transactions (the claim, the commit and the batch's
shared reads and held writes spread over more messages), and a shallow one as before."""


class InboxWorker:
    def __init__(self, db: Database, clock: Clock, processors: dict[str, Processor], *, threads: int = 4,
                 batch: int = BATCH, deep_batch: int | None = None, poll_seconds: float = 0.5,
                 metrics: Metrics | None = None, name: str = "") -> None:
        self.db = db
        self.clock = clock
        self.processors = processors
        self.threads = threads
        self.batch = batch
        self.deep_batch = max(batch, deep_batch or DEEP_BATCH) if db.dialect == "postgresql" else batch
        self.poll_seconds = poll_seconds
        self.metrics = metrics
        self.name = name or f"{os.uname().nodename}:{os.getpid()}"
        # Wakes not yet taken by an idle thread (at most one per thread): each releases one
        # thread, and one given while every thread is busy is taken by the next to go idle.
        self._wakes = 0
        self._idle = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._inflight = 0
        self._held: dict[int, Claimed] = {}  # claimed by this process and not finished: their leases are renewed
        # Failed attempts whose failure could not be written (the database was away): written as
        # soon as it is back, so those rows come back after their backoff, not after their lease.
        self._unrecorded: dict[int, tuple[Claimed, str]] = {}
        self._lock = threading.Lock()
        self._last_poll = 0.0  # time.monotonic() of this process's last idle poll (_poll_turn)

    # Life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"inbox-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)
        heartbeat = threading.Thread(target=self._heartbeat, name="inbox-heartbeat", daemon=True)
        heartbeat.start()
        self._workers.append(heartbeat)

    def _heartbeat(self) -> None:
        every = inbox_store.LEASE.total_seconds() / 3
        while not self._stop.wait(every):
            with self._lock:
                held = list(self._held.values())
            try:
                inbox_store.renew(self.db, held, self.clock.now())
            except Exception as exc:  # noqa: BLE001 - the leases may lapse; the rows' work stays exactly-once
                log.warning("inbox: could not renew leases: %s", type(exc).__name__)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._idle:
            self._idle.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._workers.clear()

    def wake(self) -> None:
        """A delivery was just written: one idle thread looks now rather than at its next poll
        (not every thread: their racing claims would queue on SQLite's write turn)."""
        with self._idle:
            if self._wakes < self.threads:
                self._wakes += 1
            self._idle.notify()

    def _rest(self) -> bool:
        """Wait for a wake or `poll_seconds`; True when woken (a delivery was just written: the
        next claim need not look before it writes)."""
        with self._idle:
            if not self._wakes and not self._stop.is_set():
                self._idle.wait(self.poll_seconds)
            if self._wakes:
                self._wakes -= 1
                return True
            return False

    def _idle_until_due(self) -> bool:
        """Nothing was due: wait until a wake (a delivery this process wrote) or until the
        database has something due that no wake announces (another process's delivery, a retry
        whose backoff ended, a dead process's rows). Those are polled for by one thread of the
        process per `poll_seconds`, with a cheap read (`inbox_store.has_due`); the other idle
        threads only sleep. (Every thread claiming twice a second kept Python's lock 1.7 % of
        an idle server's time, and an acknowledgement arriving then waited for it.) True when
        woken."""
        while not self._stop.is_set():
            if self._rest():
                return True
            if not self._poll_turn():
                continue
            if self._unrecorded:
                return False
            try:
                if inbox_store.has_due(self.db, self.clock.now(), list(self.processors)):
                    return False
            except Exception:  # noqa: BLE001 - the claim says why (logged there), then backs off
                return False
        return False

    def _poll_turn(self) -> bool:
        """Whether this idle thread polls now: at most one poll per `poll_seconds` per process."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_poll < self.poll_seconds * 0.9:
                return False
            self._last_poll = now
            return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Process until nothing is due and nothing is in flight (tests, shutdown, the console).
        True when the inbox was drained in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run_once() == 0:
                if not self.busy():
                    return True
                time.sleep(0.005)
        return False

    def busy(self) -> bool:
        """A delivery is being processed in this process right now."""
        with self._lock:
            return self._inflight > 0

    # Work ---------------------------------------------------------------------------
    def _loop(self) -> None:
        limit = self.batch
        woken = False  # after a wake or a full claim there is work: the claim does not look first
        while not self._stop.is_set():
            try:
                self._record_failures()
                done = self.run_once(limit, look_first=not woken)
            except Exception as exc:  # noqa: BLE001 - the database may be away: keep polling
                if not is_transient(exc):
                    log.exception("inbox: claiming failed")
                else:
                    log.warning("inbox: database unavailable while claiming: %s", str(exc).splitlines()[0][:200])
                done = 0
                self._stop.wait(min(5.0, self.poll_seconds * 8))
            woken = done >= limit
            limit = min(self.deep_batch, limit * 2) if done >= limit else self.batch
            if done >= self.batch:  # a burst: another thread helps
                self.wake()
            elif done == 0:
                woken = self._idle_until_due()

    def run_once(self, limit: int | None = None, *, look_first: bool = True) -> int:
        """Claim one batch (of `limit` rows at most, `batch` by default) and process it; the
        number of rows claimed. `look_first=False`: work is known to be there (store/inbox.py `claim`)."""
        with self._lock:
            self._inflight += 1
        try:
            rows = inbox_store.claim(self.db, self.name, limit or self.batch, self.clock.now(),
                                     platforms=list(self.processors), look_first=look_first)
            with self._lock:
                self._held.update((row.id, row) for row in rows)
            try:
                # One conversation's rows run in arrival order; a batch may hold several of them.
                ordered = sorted(rows, key=lambda r: (r.order_key, r.id))
                if self._stop.is_set() and self._workers:
                    for row in ordered:
                        inbox_store.release(self.db, row)
                    return len(rows)
                together = [row for row in ordered if batchable(self.processors.get(row.platform))]
                if together:
                    self._process_together(together)
                for row in ordered:
                    if not batchable(self.processors.get(row.platform)):
                        try:
                            self.process(row)
                        finally:
                            with self._lock:
                                self._held.pop(row.id, None)
            finally:  # a batch cut short: its other rows must not have their leases renewed forever
                with self._lock:
                    for row in rows:
                        self._held.pop(row.id, None)
            return len(rows)
        finally:
            with self._lock:
                self._inflight -= 1

    def _process_together(self, rows: list[Claimed]) -> None:
        """Rows of batchable processors in one transaction (bot/unit.py): first optimistically,
        without savepoints; when anything fails there, that attempt is rolled back and the rows
        not yet committed are done again each in its savepoint, so a row that fails rolls back
        alone and is retried alone. Rows are done when, and only when, their batch commits
        (their `done_at` is the commit's time)."""
        started = time.monotonic()
        committed: list[Claimed] = []
        failed: dict[int, tuple[Claimed, BaseException]] = {}
        if self._batch(rows, True, committed, failed):
            settled = {row.id for row in committed}
            self._batch([row for row in rows if row.id not in settled], False, committed, failed)
        for row, exc in failed.values():
            self._failed(row, exc)
        if self.metrics is not None:
            elapsed = (time.monotonic() - started) / max(1, len(rows))
            for row in committed:
                self._count_done(row, elapsed)

    def _batch(self, rows: list[Claimed], optimistic: bool, committed: list[Claimed],
               failed: dict[int, tuple[Claimed, BaseException]]) -> bool:
        """One transaction over `rows`: the committed ones appended to `committed`, the failed
        ones to `failed`. True when an optimistic attempt was doomed (rolled back, to redo).
        A processor about to wait for the network has the batch commit what is done so far, and
        so does an acknowledgement waiting for SQLite's write turn (`Database.priority`) between
        two rows: it then waits for one row, not for the rest of the batch."""
        done: list[Claimed] = []
        batch: Batch | None = None
        try:
            with self.db.session(ALL_TENANTS) as session:
                inbox_store.relax_commit(session)

                def settle() -> None:
                    """Before a commit: the done rows marked (optimistic: all at once) or stamped."""
                    try:
                        memo.flush_deferred(session)  # writes its rows held back (store/memo.py)
                    except Exception as exc:  # an optimistic batch: redone, each row alone, holding nothing
                        assert batch is not None
                        batch.doomed = True
                        raise _Doomed from exc
                    if not done:
                        return
                    if not optimistic:
                        inbox_store.stamp_done(session, done, self.clock.now())
                        return
                    try:
                        inbox_store.mark_all_done(session, done, self.clock.now())
                    except LeaseLost:  # another worker has one of them: redo them each alone
                        assert batch is not None
                        batch.doomed = True
                        raise _Doomed from None

                def checkpoint() -> None:
                    settle()
                    session.commit()
                    committed.extend(done)
                    done.clear()
                    assert batch is not None
                    run_kept(batch)

                batch = Batch(session, checkpoint, optimistic=optimistic)
                for row in rows:
                    try:
                        self._process_row(batch, row, optimistic)
                    except LeaseLost:
                        if not optimistic:
                            log.warning("inbox: row %d was taken over by another worker; this attempt is dropped",
                                        row.id)
                    except Exception as exc:  # noqa: BLE001 - any failure means: this row, later
                        if not optimistic:
                            failed[row.id] = (row, exc)
                    else:
                        done.append(row)
                    if batch.doomed:
                        raise _Doomed
                    if self.db.priority_waiting():  # SQLite: an acknowledgement waits for the write turn
                        checkpoint()
                settle()
            committed.extend(done)
            if batch is not None:
                run_kept(batch)
        except _Doomed:
            return True
        except Exception as exc:  # noqa: BLE001 - the batch's commit failed: its uncommitted rows are retried
            settled = {row.id for row in committed} | set(failed)
            failed.update((row.id, (row, exc)) for row in rows if row.id not in settled)
        return False

    def _process_row(self, batch: Batch, row: Claimed, optimistic: bool) -> None:
        """One row of `batch`: its work, then "done" if the work did not mark it. In an
        optimistic batch the row is marked done with the others just before the commit
        (`mark_all_done`, in the same transaction: a lost lease rolls the batch back)."""
        processor = self.processors[row.platform]
        finished = False

        def finish(session: Session) -> None:
            nonlocal finished
            if not optimistic:
                inbox_store.mark_done(session, row, self.clock.now())
            finished = True

        with batch_row(batch):
            processor(row, finish)
            if not finished and not optimistic:
                with unit(self.db, ALL_TENANTS) as session:
                    finish(session)

    def _record_failures(self) -> None:
        """Write the failures that could not be written when they happened (raises while the
        database is still away; the rows stay listed)."""
        with self._lock:
            waiting = list(self._unrecorded.values())
            self._unrecorded.clear()
        for n, (row, reason) in enumerate(waiting):
            try:
                state = inbox_store.fail(self.db, row, reason, self.clock.now())
            except Exception:
                with self._lock:
                    for later, why in waiting[n:]:
                        self._unrecorded.setdefault(later.id, (later, why))
                raise
            if self.metrics is not None:
                (self.metrics.poisoned if state == "poison" else self.metrics.retries).labels(row.platform).inc()

    def process(self, row: Claimed) -> None:
        """One row in a transaction of its own (processors that send as soon as they committed)."""
        processor = self.processors.get(row.platform)
        started = time.monotonic()
        finished = False

        def finish(session: Session) -> None:
            nonlocal finished
            inbox_store.mark_done(session, row, self.clock.now())
            finished = True

        try:
            if processor is None:
                raise RuntimeError(f"no processor for platform {row.platform!r}")
            processor(row, finish)
            if not finished:
                with self.db.session(ALL_TENANTS) as session:
                    finish(session)
        except LeaseLost:
            log.warning("inbox: row %d was taken over by another worker; this attempt is dropped", row.id)
            return
        except Exception as exc:  # noqa: BLE001 - any failure means: later
            self._failed(row, exc)
            return
        self._count_done(row, time.monotonic() - started)

    def _failed(self, row: Claimed, exc: BaseException) -> None:
        """After a failed attempt: the row backs off (or is set aside), now or once the database answers."""
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        if is_transient(exc):
            log.warning("inbox: %s row %d attempt %d failed, will retry: %s", row.platform, row.id, row.attempts, reason)
        else:
            log.error("inbox: %s row %d attempt %d failed", row.platform, row.id, row.attempts, exc_info=exc)
        try:
            state = inbox_store.fail(self.db, row, reason, self.clock.now())
        except Exception:  # noqa: BLE001 - written again later; at worst the lease expires
            log.warning("inbox: could not record the failure of row %d yet; will again when the database answers",
                        row.id)
            with self._lock:
                self._unrecorded[row.id] = (row, reason)
            return
        if self.metrics is not None:
            (self.metrics.poisoned if state == "poison" else self.metrics.retries).labels(row.platform).inc()

    def _count_done(self, row: Claimed, elapsed: float) -> None:
        if self.metrics is None:
            return
        self.metrics.processed.labels(row.platform).inc()
        self.metrics.processing.labels(row.platform).observe(elapsed)
        waited = (self.clock.now() - row.received_at).total_seconds()
        self.metrics.ack_to_done.labels(row.platform).observe(max(0.0, waited))
