"""Effects as JSON and back, exactly: every frozen dataclass of bot/types.py (Outbound, Reply,
Card, Form, FormField, Action, ConversationRef, UserRef, FetchHistory…), tuples, attachment
bytes, datetimes and dates. What the durable outbox and digest deliveries store, so a row resumed by
another process sends exactly what was decided.

The encoding is generic: a dataclass is `{"$": "ClassName", field: value…}`, a tuple
`{"$tuple": […]}`, bytes `{"$bytes": base64}`, a datetime `{"$dt": iso}`, a date `{"$date": iso}`; only classes of
bot/types.py decode, so a row cannot name anything else.

Pings and channel links (`bot.text.ping_marker`/`link_marker`) carry this process's random
`LIVE_KEY`, which another process does not know (there they would degrade to plain names).
`dumps` seals the live markers of *this* process with a fresh random key stored beside them,
and `loads` turns markers with that seal back into live ones of the loading process. Nothing
else can carry the seal: user text never contains a marker bracket (`bot.text.sanitize`), and
the seal did not exist before the effects were encoded. Markers of another process's key stay
stale, as everywhere.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from datetime import date, datetime
from typing import Any, Callable, Sequence

from bot import types as neutral
from bot.text import LIVE, LIVE_KEY, MARK_OPEN
from bot.types import Effect

VERSION = 1
_CLASSES: dict[str, type] = {name: cls for name, cls in vars(neutral).items()
                             if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == neutral.__name__}


def _encode(value: Any, text: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _CLASSES.get(name) is not type(value):
            raise TypeError(f"not a bot.types class: {name}")
        data: dict[str, Any] = {"$": name}
        for f in dataclasses.fields(value):
            data[f.name] = _encode(getattr(value, f.name), text)
        return data
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, text) for v in value]}
    if isinstance(value, list):
        return [_encode(v, text) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):  # a prompt parameter (Reply.params), formatted for the reader
        return {"$date": value.isoformat()}
    if isinstance(value, dict) or hasattr(value, "items"):
        items = {str(k): _encode(v, text) for k, v in value.items()}
        if any(k.startswith("$") for k in items):
            return {"$dict": [[k, v] for k, v in items.items()]}
        return items
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode(value: Any, text: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [_decode(v, text) for v in value]
    if not isinstance(value, dict):
        return value
    if "$" in value:
        cls = _CLASSES.get(str(value["$"]))
        if cls is None:
            raise ValueError(f"unknown effect type {value['$']!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _decode(v, text) for k, v in value.items() if k in names})
    if "$tuple" in value:
        return tuple(_decode(v, text) for v in value["$tuple"])
    if "$bytes" in value:
        return base64.b64decode(value["$bytes"])
    if "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if "$date" in value:
        return date.fromisoformat(value["$date"])
    if "$dict" in value:
        return {k: _decode(v, text) for k, v in value["$dict"]}
    return {k: _decode(v, text) for k, v in value.items()}


def dumps_all(effects: Sequence[Effect]) -> str:
    """Several effects as one JSON document (live markers sealed, see the module docstring)."""
    seal = secrets.token_hex(6)
    mine, sealed = MARK_OPEN + LIVE + LIVE_KEY, MARK_OPEN + LIVE + seal
    body = [_encode(e, lambda s: s.replace(mine, sealed) if mine in s else s) for e in effects]
    return json.dumps({"v": VERSION, "seal": seal, "effects": body}, ensure_ascii=False)


def loads_all(text: str) -> list[Effect]:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != VERSION or not isinstance(data.get("effects"), list):
        raise ValueError("not an effects document")
    seal = str(data.get("seal") or "")
    sealed, live = MARK_OPEN + LIVE + seal, MARK_OPEN + LIVE + LIVE_KEY
    restore: Callable[[str], str] = (lambda s: s.replace(sealed, live) if sealed in s else s) if seal else (lambda s: s)
    effects = [_decode(e, restore) for e in data["effects"]]
    for effect in effects:
        if not isinstance(effect, (neutral.Outbound, neutral.FetchHistory, neutral.SpaceChange)):
            raise ValueError(f"not an effect: {type(effect).__name__}")
    return effects


def dumps(effect: Effect) -> str:
    return dumps_all([effect])


def loads(text: str) -> Effect:
    effects = loads_all(text)
    if len(effects) != 1:
        raise ValueError(f"{len(effects)} effects where one was expected")
    return effects[0]
