"""botbuilder schema objects ↔ wire JSON, keeping the fields msrest does not know.

`Activity.serialize()` drops properties the schema lacks (a mention entity's `mentioned`
and `text`, `conversation.tenantId`); they survive in `additional_properties`, merged back here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


def to_wire(value: Any) -> Any:
    attribute_map = getattr(type(value), "_attribute_map", None)
    if attribute_map is not None:
        out: dict[str, Any] = {}
        for attr, info in attribute_map.items():
            item = getattr(value, attr, None)
            if item is not None and attr != "additional_properties":
                out[info["key"].replace("\\.", ".")] = to_wire(item)
        for key, item in (getattr(value, "additional_properties", None) or {}).items():
            out.setdefault(key, to_wire(item))
        return out
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
