"""An Outbound as JSON, so a built digest is stored with its delivery row and a resumed
delivery posts exactly what was built, even from another process."""
from __future__ import annotations

import json
from typing import Any

from bot.types import Action, Card, ConversationRef, Outbound, Reply, UserRef


def dumps(outbound: Outbound) -> str:
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


def loads(text: str) -> Outbound:
    data = json.loads(text)
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
