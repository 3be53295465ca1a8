"""Clocks: the real one, and a fixed one tests and the console can move forward."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(timezone.utc)


class OffsetClock:
    """The real time plus an offset the console can move forward (`/clock +2h`)."""

    def __init__(self, offset: timedelta = timedelta(0), start: datetime | None = None) -> None:
        self._offset = offset
        if start is not None:
            self._offset = start - datetime.now(timezone.utc)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        self._offset += delta
        return self.now()
