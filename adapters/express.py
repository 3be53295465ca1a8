"""The express lane: one thread that claims and processes inbox rows as soon as an answer went out.

Every messenger's HTTP side (Slack through adapters/slack/runtime.py, Teams through
adapters/teams/inbox.py) pokes this lane once a delivery is written and acknowledged, rather
than waking the inbox worker: a single claimer, `InboxWorker.run_once` (the same claims,
leases, batches and failure handling as the worker's threads), repeated while it finds rows,
and never busy with a batch of earlier rows when a request arrives. Claims racing for a new
row queued on SQLite's write turn behind the winner and its transactions (each empty claim
cost 5 to 20 ms of the write turn and the GIL; a Teams reply's p99 was four times the bare
botbuilder bot's). The worker's threads still poll (retries, rows a crashed process left,
rows written while this lane was busy), and one is woken when a claim came back full: a burst
is then worked by all of them.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class ExpressLane:
    def __init__(self, worker: Any) -> None:
        self.worker = worker  # bot.inbox.InboxWorker
        self._poked = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="inbox-express", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._poked.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def poke(self) -> None:
        """A row was written and answered: claim it now. Without the lane running (not started,
        or stopped), an inbox worker thread is woken instead."""
        if self._thread is None or self._stop.is_set():
            self.worker.wake()
            return
        self._poked.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._poked.wait()
            self._poked.clear()
            while not self._stop.is_set():
                try:
                    claimed = self.worker.run_once()
                except Exception as exc:  # noqa: BLE001 - the database is away: the worker's polls retry
                    log.warning("inbox: express claim failed (%s); the inbox worker will take the rows",
                                type(exc).__name__)
                    break
                if claimed == 0:
                    break
                if claimed >= self.worker.batch:  # a burst: let the worker's threads help
                    self.worker.wake()
