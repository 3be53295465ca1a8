"""The worker pool behind the ack: jobs start only once the acknowledgement is written,
jobs of one channel run in arrival order, and `drain()` waits for all of them."""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

log = logging.getLogger("adapters.slack")
Job = tuple[Callable[..., None], tuple[Any, ...], "str | None"]
_DEFERRED: ContextVar["list[Job] | None"] = ContextVar("slack_deferred_jobs", default=None)


class Workers:
    def __init__(self, size: int = 8, extra_busy: Callable[[], bool] = lambda: False) -> None:
        self.pool = ThreadPoolExecutor(size, thread_name_prefix="slack-worker")
        self._extra_busy = extra_busy
        self._inflight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._deferred = 0

    def submit(self, fn: Callable[..., None], *args: Any, key: str | None = None) -> None:
        """Run `fn(*args)` after the ack, in a worker thread; failures are logged, never raised.

        Jobs with the same `key` (a channel) run one after the other, in arrival order, so a
        message is indexed before its edit; jobs without a key run in parallel. Inside
        `deferred()` (an HTTP request) jobs wait until the ack has been written, so a worker
        never competes with the acknowledgement for the interpreter.
        """
        pending = _DEFERRED.get()
        if pending is not None:
            with self._lock:
                self._deferred += 1
            pending.append((fn, args, key))
            return
        self._start(fn, args, key)

    @contextmanager
    def deferred(self) -> Iterator[list[Job]]:
        pending: list[Job] = []
        token = _DEFERRED.set(pending)
        try:
            yield pending
        finally:
            _DEFERRED.reset(token)

    def release(self, pending: list[Job]) -> None:
        for fn, args, key in pending:
            self._start(fn, args, key)
            with self._lock:
                self._deferred -= 1
        pending.clear()

    def _start(self, fn: Callable[..., None], args: tuple[Any, ...], key: str | None) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001
                log.exception("slack: %s failed", getattr(fn, "__name__", fn))

        with self._lock:
            if key is not None:
                queue = self._queues.get(key)
                if queue is not None:
                    queue.append(run)
                    return
                self._queues[key] = deque()
            future = self.pool.submit(self._run_keyed, run, key)
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _run_keyed(self, run: Callable[[], None], key: str | None) -> None:
        while True:
            run()
            if key is None:
                return
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                run = queue.popleft()

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._inflight) or self._extra_busy() or self._deferred > 0

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every submitted job (and backfill) finished: tests and shutdown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.busy() and loop.time() < deadline:
            await asyncio.sleep(0.002)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
