"""Scenario harnesses (one per messenger) and what they share."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Callable

from bot.core import Bot
from bot.ticker import advance_clock
from bot.types import Effect

_DURATION = re.compile(r"^\+?(\d+)\s*(m|min|h|d|j|w)$")
_UNITS = {"m": timedelta(minutes=1), "min": timedelta(minutes=1), "h": timedelta(hours=1),
          "d": timedelta(days=1), "j": timedelta(days=1), "w": timedelta(weeks=1)}


def advance(bot: Bot, spec: str, deliver: Callable[[list[Effect]], None]) -> None:
    """A step's `advance="+2h"`: move the test clock forward, ticking as a server would have
    (`bot.ticker.advance_clock`: each job runs once per elapsed period, or per resolution), each
    tick's effects handed to `deliver` (the harness's own sending path)."""
    m = _DURATION.match(spec.replace(" ", ""))
    if not m:
        raise ValueError(f"bad advance {spec!r}")
    advance_clock(bot, int(m.group(1)) * _UNITS[m.group(2)], deliver)
