"""Neutral replies → Teams message activities (wire JSON). Pure: no SDK, no I/O.

- `text` escaped (`&`, `<`, `>`) so user text can never ping; mention markers become
  `<at>Name</at>` plus a `mention` entity whose `text` matches exactly.
- Cards become one Adaptive Card 1.5 attachment: title, body, fields as a FactSet,
  sections, actions as `Action.Submit` with `{"command": …}`, footer.
- Forms become Input.* elements and an `Action.Submit` carrying `form.submit_command`.
- The whole activity stays under 28 KB; content is shortened with a localized footer.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bot.text import MARK_CLOSE, MARK_OPEN, split_markers
from bot.types import Action, Card, Form, Reply

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28 * 1024
MAX_TOP_ACTIONS = 6
_STYLE = {"primary": "positive", "danger": "destructive", "default": "default"}
_LIMITS = ((None, None), (4000, 60), (2000, 30), (1000, 15), (400, 8), (150, 4), (60, 2))

Translate = Callable[..., str]


@dataclass(frozen=True)
class Names:
    """Display names for the ids found in mention markers."""

    users: Mapping[str, str]
    channels: Mapping[str, str]

    def user(self, uid: str) -> str:
        return self.users.get(uid) or uid

    def channel(self, cid: str) -> str:
        return self.channels.get(cid) or cid


NO_NAMES = Names({}, {})


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def render_text(text: str, names: Names) -> tuple[str, list[dict[str, Any]]]:
    """Message text (escaped) and the mention entities matching its `<at>` tags."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    seen: set[str] = set()
    for kind, value in split_markers(text):
        if kind == "text":
            out.append(escape(value))
        elif kind == "user":
            at = f"<at>{escape(names.user(value))}</at>"
            out.append(at)
            if value not in seen:
                seen.add(value)
                entities.append({"type": "mention", "text": at, "mentioned": {"id": value, "name": names.user(value)}})
        else:
            out.append(escape("#" + names.channel(value)))
    return "".join(out), entities


def card_text(text: str, names: Names, limit: int | None = None) -> str:
    """Text for a TextBlock: markers as plain names (cards cannot carry mention entities here)."""
    parts = []
    for kind, value in split_markers(text):
        parts.append(value if kind == "text" else ("@" + names.user(value) if kind == "user" else "#" + names.channel(value)))
    return shorten(("".join(parts)), limit)


def shorten(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def shorten_marked(text: str, limit: int | None) -> str:
    """Shorten text that may hold mention markers without cutting one in half."""
    if limit is None or len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    if cut.rfind(MARK_OPEN) > cut.rfind(MARK_CLOSE):
        cut = cut[: cut.rfind(MARK_OPEN)]
    return cut.rstrip() + "…"


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _submit(action: Action) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": action.label[:200], "data": {"command": action.command},
            "style": _STYLE.get(action.style, "default")}


def _card_body(card: Card, names: Names, limit: int | None, items: int | None, t: Translate) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [_block(card_text(card.title, names, 300), weight="Bolder", size="Medium")]
    if card.body:
        body.append(_block(card_text(card.body, names, limit)))
    fields = card.fields if items is None else card.fields[:items]
    if fields:
        body.append({"type": "FactSet", "facts": [
            {"title": card_text(k, names, 200), "value": card_text(v, names, limit)} for k, v in fields]})
    sections = card.sections if items is None else card.sections[:items]
    for heading, text in sections:
        body.append(_block(card_text(heading, names, 300), weight="Bolder", separator=True))
        if text:
            body.append(_block(card_text(text, names, limit)))
    hidden = len(card.fields) - len(fields) + len(card.sections) - len(sections)
    if hidden > 0:
        body.append(_block(t("teams.card_more", count=hidden), isSubtle=True))
    return body


def _form_body(form: Form, names: Names, limit: int | None) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [_block(card_text(form.title, names, 300), weight="Bolder", size="Medium")]
    for f in form.fields:
        label = card_text(f.label, names, 300)
        if f.kind == "checkbox":
            body.append({"type": "Input.Toggle", "id": f.name, "title": label, "value": "true" if f.value in ("true", "1", "yes") else "false",
                         "valueOn": "true", "valueOff": "false"})
        elif f.kind == "select":
            element: dict[str, Any] = {"type": "Input.ChoiceSet", "id": f.name, "label": label, "style": "compact",
                                       "isRequired": f.required, "choices": [{"title": shorten(l, 200), "value": v} for v, l in f.options]}
            if f.value:
                element["value"] = f.value
            body.append(element)
        else:
            element = {"type": "Input.Text", "id": f.name, "label": label, "isRequired": f.required,
                       "isMultiline": f.kind == "multiline", "maxLength": f.max_length}
            if f.value:
                element["value"] = shorten(f.value, limit)
            body.append(element)
    return body


def build_card(reply: Reply, names: Names, t: Translate, limit: int | None = None, items: int | None = None) -> dict[str, Any] | None:
    """The Adaptive Card 1.5 of a reply (None when it has neither card, form nor attachment)."""
    card, form = reply.card, reply.form
    if card is None and form is None and reply.attachment is None:
        return None
    body: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    if card is not None:
        body += _card_body(card, names, limit, items, t)
        actions += [_submit(a) for a in card.actions]
    if form is not None:
        body += _form_body(form, names, limit)
        actions.insert(0, {"type": "Action.Submit", "title": form.submit_label or t("teams.form_submit"),
                           "data": {"command": form.submit_command}, "style": "positive"})
    if reply.attachment is not None:
        filename, content = reply.attachment
        body.append(_block("📎 " + filename, weight="Bolder", separator=True))
        body.append(_block(shorten(content.decode("utf-8", "replace"), limit or 20000), fontType="Monospace"))
    if card is not None and card.footer:
        body.append(_block(card_text(card.footer, names, 500), isSubtle=True, size="Small", separator=True))
    top, rest = actions[:MAX_TOP_ACTIONS], actions[MAX_TOP_ACTIONS:]
    for i in range(0, len(rest), 5):
        body.append({"type": "ActionSet", "actions": rest[i : i + 5]})
    result: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5",
                              "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body}
    if top:
        result["actions"] = top
    result["fallbackText"] = card_text(reply.text, names, 500)
    return result


def size_of(activity: Mapping[str, Any]) -> int:
    return len(json.dumps(activity, ensure_ascii=False).encode("utf-8"))


def render(reply: Reply, names: Names, t: Translate, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """The message activity (wire JSON) for a reply, within `max_bytes`."""
    activity: dict[str, Any] = {}
    for limit, items in _LIMITS:
        activity = _assemble(reply, names, t, limit, items, truncated=limit is not None)
        if size_of(activity) <= max_bytes:
            return activity
    # Still too big (thousands of buttons or fields): keep the text only, shortened.
    text, entities = render_text(shorten_marked(reply.text, 2000), names)
    return {"type": "message", "textFormat": "markdown", "text": text + "\n\n" + escape(t("teams.truncated")), "entities": entities}


def _assemble(reply: Reply, names: Names, t: Translate, limit: int | None, items: int | None, truncated: bool) -> dict[str, Any]:
    text, entities = render_text(shorten_marked(reply.text, limit * 2 if limit else None), names)
    activity: dict[str, Any] = {"type": "message", "textFormat": "markdown", "text": text}
    if entities:
        activity["entities"] = entities
    card = build_card(reply, names, t, limit, items)
    if card is not None:
        if truncated:
            card["body"].append(_block(t("teams.truncated"), isSubtle=True, size="Small"))
        activity["attachments"] = [{"contentType": CARD_CONTENT_TYPE, "content": card}]
    elif truncated:
        activity["text"] += "\n\n" + escape(t("teams.truncated"))
    return activity


def cards_of(activity: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [a["content"] for a in activity.get("attachments") or [] if a.get("contentType") == CARD_CONTENT_TYPE]


def plain_text(activity: Mapping[str, Any]) -> str:
    """What a person reads: text with `<at>` tags as @names, then every card's texts and buttons."""
    text = str(activity.get("text") or "").replace("<at>", "@").replace("</at>", "")
    parts = [html.unescape(text)]
    for card in cards_of(activity):
        parts += _card_strings(card.get("body") or [])
        for action in card.get("actions") or []:
            parts.append(f"{action.get('title', '')} {(action.get('data') or {}).get('command', '')}".strip())
    return "\n".join(p for p in parts if p)


def _card_strings(elements: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for el in elements:
        kind = el.get("type")
        if kind == "TextBlock":
            out.append(str(el.get("text", "")))
        elif kind == "FactSet":
            out += [f"{f['title']}: {f['value']}" for f in el.get("facts", [])]
        elif kind == "ActionSet":
            out += [f"{a.get('title', '')} {(a.get('data') or {}).get('command', '')}".strip() for a in el.get("actions", [])]
        elif kind and str(kind).startswith("Input."):
            out.append(str(el.get("label") or el.get("title") or ""))
        elif kind == "Container":
            out += _card_strings(el.get("items", []))
    return out
