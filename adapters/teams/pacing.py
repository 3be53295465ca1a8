"""Calling Teams politely: per-conversation pacing and retries with backoff and jitter.

Teams allows a bot about 7 messages per second and 60 per 30 seconds in one conversation
(FACTS.md); 429, 412, 502 and 504 answers are retried with exponential backoff and jitter,
honouring `Retry-After` when the service sends it.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, TypeVar

from bot.metrics import report_api_error

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 412, 502, 504})
WINDOWS: tuple[tuple[int, float], ...] = ((7, 1.0), (60, 30.0))


class Pacer:
    """Reserves send slots per conversation so no window's limit is exceeded.

    Reservation is synchronous (no await between reading and recording), so concurrent
    senders on one event loop never over-book a window.
    """

    def __init__(self, windows: tuple[tuple[int, float], ...] = WINDOWS, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.windows = windows
        self.clock = clock
        self.sleep = sleep
        self._horizon = max((w for _, w in windows), default=0.0)
        self._slots: dict[str, deque[float]] = {}

    def reserve(self, key: str) -> float:
        """Book the earliest allowed send time for `key` and return it."""
        now = self.clock()
        stamps = self._slots.setdefault(key, deque())
        while stamps and stamps[0] <= now - self._horizon:
            stamps.popleft()
        at = max(now, stamps[-1]) if stamps else now
        changed = True
        while changed:
            changed = False
            for limit, window in self.windows:
                recent = [s for s in stamps if s > at - window]
                if len(recent) >= limit:
                    at = recent[-limit] + window
                    changed = True
        stamps.append(at)
        if len(self._slots) > 10000:
            self._forget(now)
        return at

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self._slots.items() if not v or v[-1] <= now - self._horizon]:
            del self._slots[key]

    async def wait(self, key: str) -> None:
        at = self.reserve(key)
        delay = at - self.clock()
        if delay > 0:
            await self.sleep(delay)


def http_status(exc: BaseException) -> tuple[int | None, float | None]:
    """(status, Retry-After seconds) of an HTTP error raised by the connector client."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    headers = getattr(response, "headers", None) or {}
    retry_after: float | None = None
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    if raw:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            try:
                retry_after = max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
            except (TypeError, ValueError):
                retry_after = None
    return (int(status) if isinstance(status, int) else None), retry_after


class Retrying:
    """Runs a call again on 429 / 412 / 502 / 504: exponential backoff with jitter, Retry-After first."""

    def __init__(self, attempts: int = 5, base: float = 0.5, cap: float = 30.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, rand: Callable[[], float] = random.random) -> None:
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.sleep = sleep
        self.rand = rand

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.cap, self.base * (2 ** attempt))
        jittered = backoff / 2 + self.rand() * backoff / 2
        if retry_after is not None:
            return min(max(retry_after, 0.0), 300.0) + self.rand() * 0.1 * self.base
        return jittered

    async def run(self, call: Callable[[], Awaitable[T]], what: str = "call") -> T:
        for attempt in range(self.attempts):
            try:
                return await call()
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised when not retryable
                status, retry_after = http_status(exc)
                report_api_error("teams", what)
                if status not in RETRY_STATUSES or attempt == self.attempts - 1:
                    raise
                wait = self.delay(attempt, retry_after)
                log.warning("teams: %s got HTTP %s, retry %d/%d in %.2f s", what, status, attempt + 1, self.attempts - 1, wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")
