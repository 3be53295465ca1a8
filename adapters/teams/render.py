"""Neutral replies → Teams message activities (wire JSON). Pure: no SDK, no I/O.

- Every character outside the core's markers is literal. In `text` (Markdown) it is
  HTML-escaped (`&`, `<`, `>`: no `<at>`, no HTML) and Markdown-escaped (`[ ] ( ) * _ ~ ` \\ #`…:
  no link, no formatting); in card TextBlocks and facts it is Markdown-escaped, `<`, `>`, `&`
  included. Only live markers (`bot.text.ping_marker`) become `<at>Name</at>` plus a
  `mention` entity whose `text` matches exactly; people and channels named in user text
  appear by name; code spans (from prompt templates) stay code.
- Cards become one Adaptive Card 1.5 attachment: title, body, fields as a FactSet,
  sections, actions as `Action.Submit` with `{"command": …}`, footer.
- Forms become Input.* elements and an `Action.Submit` carrying `form.submit_command`.
- Plain-text properties (button titles, input labels, choices, fallbackText) get names, no markup.
- A picture (`Reply.picture`, a chart) is an `Image` element of the card, its PNG inline as a
  `data:image/png;base64,…` URI (Adaptive Cards 1.2+), with its `altText`; Teams fetches nothing.
- The whole activity stays under 28 KB: a picture that does not fit is scaled down (to 75 %, then
  50 % of its width) before any text is shortened; content is shortened with a localized footer;
  when even that is too big, the text alone goes, with the picture's alt text.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import replace
from typing import Any, Callable, Mapping

from bot.text import NO_NAMES, Names, shorten_marked, split_markers, strip_markers
from bot.types import Action, Card, Form, Picture, Reply

__all__ = ["NO_NAMES", "Names", "build_card", "cards_of", "plain_text", "render", "render_text"]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28 * 1024
MAX_TOP_ACTIONS = 6
_STYLE = {"primary": "positive", "danger": "destructive", "default": "default"}
PICTURE_SCALES = (0.75, 0.5)  # tried in turn when a picture makes the activity too big
ALT_MAX = 1000
_LIMITS = ((None, None), (4000, 60), (2000, 30), (1000, 15), (400, 8), (150, 4), (60, 2))
_MD_SPECIALS = re.compile(r"([\\`*_~\[\]()#])")
_CARD_SPECIALS = re.compile(r"([\\`*_~\[\]()#<>&])")
_MD_ESCAPED = re.compile(r"\\([\\`*_~\[\]()#<>&])")

Translate = Callable[..., str]


def escape(text: str) -> str:
    """Literal text for a Markdown message `text`: Markdown specials backslash-escaped, HTML escaped."""
    return html.escape(_MD_SPECIALS.sub(r"\\\1", text), quote=False)


def card_escape(text: str) -> str:
    """Literal text for a TextBlock or fact (Markdown subset, no HTML): every special backslash-escaped."""
    return _CARD_SPECIALS.sub(r"\\\1", text)


def _code(value: str) -> str:
    return value.replace("`", "'")


def render_text(text: str, names: Names) -> tuple[str, list[dict[str, Any]]]:
    """Message text (escaped) and the mention entities matching its `<at>` tags."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    seen: set[str] = set()
    for kind, value in split_markers(text):
        if kind == "text":
            out.append(escape(value))
        elif kind == "ping":
            at = f"<at>{escape(names.user(value))}</at>"
            out.append(at)
            if value not in seen:
                seen.add(value)
                entities.append({"type": "mention", "text": at, "mentioned": {"id": value, "name": names.user(value)}})
        elif kind == "user":
            out.append(escape("@" + names.user(value)))
        elif kind == "code":
            out.append("`" + html.escape(_code(value), quote=False) + "`")
        else:
            out.append(escape("#" + names.channel(value)))
    return "".join(out), entities


def card_text(text: str, names: Names, limit: int | None = None) -> str:
    """Text for a TextBlock or fact: markers as plain names (cards carry no mention entities here)."""
    parts = []
    for kind, value in split_markers(shorten_marked(text, limit)):
        if kind == "text":
            parts.append(card_escape(value))
        elif kind in ("user", "ping"):
            parts.append(card_escape("@" + names.user(value)))
        elif kind == "code":  # TextBlocks have no code style: the backticks show
            parts.append(card_escape("`" + _code(value) + "`"))
        else:
            parts.append(card_escape("#" + names.channel(value)))
    return "".join(parts)


def plain(text: str, names: Names, limit: int | None = None) -> str:
    """For plain-text properties (titles of buttons, labels of inputs, fallbackText)."""
    return shorten(strip_markers(text, {**names.users, **names.channels}), limit)


def shorten(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _submit(action: Action, names: Names) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": plain(action.label, names, 200), "data": {"command": action.command},
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
        body.append(_block(card_text(t("teams.card_more", count=hidden), names), isSubtle=True))
    return body


def _form_body(form: Form, names: Names, limit: int | None) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [_block(card_text(form.title, names, 300), weight="Bolder", size="Medium")]
    for f in form.fields:
        label = plain(f.label, names, 300)
        if f.kind == "checkbox":
            body.append({"type": "Input.Toggle", "id": f.name, "title": label, "value": "true" if f.value in ("true", "1", "yes") else "false",
                         "valueOn": "true", "valueOff": "false"})
        elif f.kind == "select":
            element: dict[str, Any] = {"type": "Input.ChoiceSet", "id": f.name, "label": label, "style": "compact",
                                       "isRequired": f.required, "choices": [{"title": plain(l, names, 200), "value": v} for v, l in f.options]}
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
    """The Adaptive Card 1.5 of a reply (None when it has neither card, form, attachment nor picture)."""
    card, form = reply.card, reply.form
    if card is None and form is None and reply.attachment is None and reply.picture is None:
        return None
    body: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    if card is not None:
        body += _card_body(card, names, limit, items, t)
        actions += [_submit(a, names) for a in card.actions]
    if form is not None:
        body += _form_body(form, names, limit)
        actions.insert(0, {"type": "Action.Submit", "title": plain(form.submit_label or t("teams.form_submit"), names, 200),
                           "data": {"command": form.submit_command}, "style": "positive"})
    if reply.attachment is not None:
        filename, content = reply.attachment
        body.append(_block("📎 " + card_escape(filename), weight="Bolder", separator=True))
        body.append(_block(card_escape(shorten(content.decode("utf-8", "replace"), limit or 20000)), fontType="Monospace"))
    if reply.picture is not None:
        body.append(image(reply.picture))
    if card is not None and card.footer:
        body.append(_block(card_text(card.footer, names, 500), isSubtle=True, size="Small", separator=True))
    top, rest = actions[:MAX_TOP_ACTIONS], actions[MAX_TOP_ACTIONS:]
    for i in range(0, len(rest), 5):
        body.append({"type": "ActionSet", "actions": rest[i : i + 5]})
    result: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5",
                              "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body}
    if top:
        result["actions"] = top
    result["fallbackText"] = plain(reply.text, names, 500)
    return result


def image(picture: Picture) -> dict[str, Any]:
    """An Image element carrying the PNG itself (a data URI) and its alt text."""
    return {"type": "Image", "url": "data:image/png;base64," + base64.b64encode(picture.png).decode("ascii"),
            "altText": shorten(" ".join(picture.alt.split()), ALT_MAX), "size": "Stretch"}


def scaled(picture: Picture, factor: float) -> Picture:
    """The picture at `factor` of its width and height (a palette PNG, like the charts')."""
    from PIL import Image

    with Image.open(io.BytesIO(picture.png)) as img:
        rgb = img.convert("RGB")
    size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
    small: Any = rgb.resize(size, Image.Resampling.LANCZOS).quantize(colors=128, method=Image.Quantize.FASTOCTREE,
                                                                     dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG")
    return replace(picture, png=out.getvalue())


def size_of(activity: Mapping[str, Any]) -> int:
    return len(json.dumps(activity, ensure_ascii=False).encode("utf-8"))


def render(reply: Reply, names: Names, t: Translate, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """The message activity (wire JSON) for a reply, within `max_bytes`."""
    activity: dict[str, Any] = _assemble(reply, names, t, None, None, truncated=False)
    if size_of(activity) <= max_bytes:
        return activity
    if reply.picture is not None:  # a smaller picture before shorter text
        original = reply.picture
        for factor in PICTURE_SCALES:
            reply = replace(reply, picture=scaled(original, factor))
            activity = _assemble(reply, names, t, None, None, truncated=False)
            if size_of(activity) <= max_bytes:
                return activity
    for limit, items in _LIMITS[1:]:
        activity = _assemble(reply, names, t, limit, items, truncated=True)
        if size_of(activity) <= max_bytes:
            return activity
    # Still too big (thousands of buttons or fields, a huge picture): keep the text only, shortened.
    text, entities = render_text(shorten_marked(reply.text, 2000), names)
    if reply.picture is not None:
        text += "\n\n" + render_text(shorten(reply.picture.alt, ALT_MAX), names)[0]
    return {"type": "message", "textFormat": "markdown", "text": text + "\n\n" + render_text(t("teams.truncated"), names)[0],
            "entities": entities}


def _assemble(reply: Reply, names: Names, t: Translate, limit: int | None, items: int | None, truncated: bool) -> dict[str, Any]:
    text, entities = render_text(shorten_marked(reply.text, limit * 2 if limit else None), names)
    activity: dict[str, Any] = {"type": "message", "textFormat": "markdown", "text": text}
    if entities:
        activity["entities"] = entities
    card = build_card(reply, names, t, limit, items)
    if card is not None:
        if truncated:
            card["body"].append(_block(card_text(t("teams.truncated"), names), isSubtle=True, size="Small"))
        activity["attachments"] = [{"contentType": CARD_CONTENT_TYPE, "content": card}]
    elif truncated:
        activity["text"] += "\n\n" + render_text(t("teams.truncated"), names)[0]
    return activity


def cards_of(activity: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [a["content"] for a in activity.get("attachments") or [] if a.get("contentType") == CARD_CONTENT_TYPE]


def plain_text(activity: Mapping[str, Any]) -> str:
    """What a person reads: text with `<at>` tags as @names, then every card's texts and buttons."""
    text = str(activity.get("text") or "").replace("<at>", "@").replace("</at>", "")
    parts = [unescape_markdown(html.unescape(text))]
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
            out.append(unescape_markdown(str(el.get("text", ""))))
        elif kind == "FactSet":
            out += [f"{unescape_markdown(f['title'])}: {unescape_markdown(f['value'])}" for f in el.get("facts", [])]
        elif kind == "ActionSet":
            out += [f"{a.get('title', '')} {(a.get('data') or {}).get('command', '')}".strip() for a in el.get("actions", [])]
        elif kind and str(kind).startswith("Input."):
            out.append(str(el.get("label") or el.get("title") or ""))
        elif kind == "Container":
            out += _card_strings(el.get("items", []))
        elif kind == "Image" and el.get("altText"):
            out.append(str(el["altText"]))
    return out


def unescape_markdown(text: str) -> str:
    """What a reader sees of escaped Markdown: the backslashes of escapes are not shown."""
    return _MD_ESCAPED.sub(r"\1", text)
