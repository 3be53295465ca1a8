"""An Outbound as JSON, so a built digest is stored with its delivery row and a resumed
delivery posts exactly what was built, even from another process.

Written with the generic codec (bot/effects_json.py); rows written before it (this module's
own format, `_dumps_v0`) are still read."""
from __future__ import annotations

import json
from typing import Any

from bot import effects_json
from bot.types import Action, Card, ConversationRef, Outbound, Reply, UserRef


def dumps(outbound: Outbound) -> str:
    return effects_json.dumps(outbound)


def loads(text: str) -> Outbound:
    data = json.loads(text)
    if isinstance(data, dict) and "v" in data:
        effect = effects_json.loads(text)
        if not isinstance(effect, Outbound):
            raise ValueError("a digest delivery holds one Outbound")
        return effect
    return _loads_v0(data)


def _dumps_v0(outbound: Outbound) -> str:
    """The format of rows written before bot/effects_json.py (kept for the tests of `loads`)."""
    to = outbound.to
    if isinstance(to, UserRef):
        target: dict[str, Any] = {"type": "user", "platform": to.platform, "tenant": to.tenant, "id": to.id,
                                  "display_name": to.display_name}
    else:
        target = {"type": "conversation", "platform": to.platform, "tenant": to.tenant, "id": to.id, "kind": to.kind,
                  "name": to.name, "thread_id": to.thread_id}
    reply = outbound.reply
    card = reply.card
    data = {
        "to": target,
        "anchor": outbound.anchor,
        "reply": {"text": reply.text, "key": reply.key, "params": dict(reply.params)},
        "card": None if card is None else {
            "title": card.title, "body": card.body, "fields": [list(f) for f in card.fields],
            "actions": [[a.label, a.command, a.style] for a in card.actions], "footer": card.footer,
            "sections": [list(s) for s in card.sections],
        },
    }
    return json.dumps(data, ensure_ascii=False)


def _loads_v0(data: dict[str, Any]) -> Outbound:
    t = data["to"]
    to: ConversationRef | UserRef
    if t["type"] == "user":
        to = UserRef(t["platform"], t["tenant"], t["id"], t.get("display_name", ""))
    else:
        to = ConversationRef(t["platform"], t["tenant"], t["id"], t.get("kind", "public"), t.get("thread_id"), t.get("name", ""))
    c = data.get("card")
    card = None if c is None else Card(
        title=c["title"], body=c["body"], fields=tuple((k, v) for k, v in c["fields"]),
        actions=tuple(Action(label, command, style) for label, command, style in c["actions"]), footer=c["footer"],
        sections=tuple((h, b) for h, b in c["sections"]),
    )
    r = data["reply"]
    return Outbound(Reply(text=r["text"], card=card, key=r["key"], params=r["params"]), to, anchor=data.get("anchor"))
