"""Neutral replies → Slack `text` + Block Kit, and forms → modal views. Pure functions.

Every character of a reply outside the core's markers is literal: `&`, `<`, `>` are escaped,
so nothing a person typed can become `<!channel>`, `<@U…>`, `<#C…>` or a labelled link
`<url|label>`. Only live markers (`bot.text.ping_marker`, `link_marker`) become `<@U…>` /
`<#C…>`; people and channels named in user text appear by name; code spans become `` `…` ``.
Every Block Kit limit of FACTS.md is respected by cutting and adding a localized footer,
never by failing the post.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from bot.text import NO_NAMES, Names, split_markers, strip_markers
from bot.types import Action, Card, Form, FormField, Reply

Translate = Callable[[str], str]
Block = dict[str, Any]

MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_VIEW = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS_PER_SECTION = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTIONS_PER_BLOCK = 25
CONTEXT_TEXT = 3000
MODAL_TITLE = 24
PRIVATE_METADATA = 3000
MESSAGE_TEXT = 3900  # Slack advises ≤ 4,000 characters of top-level text
OPTION_TEXT = 75
OPTION_VALUE = 150
MAX_OPTIONS = 100
INPUT_MAX = 3000
ACTION_PREFIX = "causette_action"
FORM_CALLBACK = "causette_form"
_PARTIAL_TAIL = re.compile(r"(<[^>]*|&[a-z#0-9]*)$")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, names: Names = NO_NAMES) -> str:
    """Core text → Slack mrkdwn: escaped text; live markers as real mentions and channel links,
    other markers as names; code spans in backticks."""
    out = []
    for kind, value in split_markers(text):
        if kind == "text":
            out.append(escape(value))
        elif kind == "ping":
            out.append(f"<@{value}>")
        elif kind == "link":
            out.append(f"<#{value}>")
        elif kind == "user":
            out.append(escape("@" + names.user(value)))
        elif kind == "channel":
            out.append(escape("#" + names.channel(value)))
        else:
            out.append("`" + escape(value.replace("`", "'")) + "`")  # a backtick would end the span
    return "".join(out)


def plain(text: str, names: Names = NO_NAMES) -> str:
    """For plain_text objects (no mrkdwn, no pings): markers become readable names."""
    return strip_markers(text, {**names.users, **names.channels})


def cut(text: str, limit: int) -> tuple[str, bool]:
    """Cut rendered mrkdwn to `limit` chars without leaving half a token or entity."""
    if len(text) <= limit:
        return text, False
    head = _PARTIAL_TAIL.sub("", text[: max(0, limit - 1)])
    return head + "…", True


@dataclass
class _Budget:
    truncated: bool = False

    def fit(self, text: str, limit: int) -> str:
        result, was_cut = cut(text, limit)
        self.truncated |= was_cut
        return result


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[Block] = field(default_factory=list)


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(i: int, action: Action, budget: _Budget, names: Names = NO_NAMES) -> Block | None:
    if len(action.command) > BUTTON_VALUE:
        budget.truncated = True
        return None
    button: Block = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}:{i}",
        "text": {"type": "plain_text", "text": budget.fit(plain(action.label, names), BUTTON_TEXT) or "…", "emoji": True},
        "value": action.command,
    }
    if action.style in ("primary", "danger"):
        button["style"] = action.style
    return button


def card_blocks(card: Card, budget: _Budget, names: Names = NO_NAMES) -> list[Block]:
    def md(text: str) -> str:
        return mrkdwn(text, names)

    blocks: list[Block] = []
    head = f"*{md(card.title)}*" if card.title else ""
    if card.body:
        head = f"{head}\n{md(card.body)}" if head else md(card.body)
    if head:
        blocks.append(_section(budget.fit(head, SECTION_TEXT)))
    fields = [{"type": "mrkdwn", "text": budget.fit(f"*{md(k)}*\n{md(v)}", FIELD_TEXT)} for k, v in card.fields]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]})
    for heading, body in card.sections:
        blocks.append(_section(budget.fit(f"*{md(heading)}*\n{md(body)}", SECTION_TEXT)))
    buttons = [b for b in (_button(i, a, budget, names) for i, a in enumerate(card.actions)) if b is not None]
    for start in range(0, len(buttons), ACTIONS_PER_BLOCK):
        blocks.append({"type": "actions", "elements": buttons[start : start + ACTIONS_PER_BLOCK]})
    if card.footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": budget.fit(md(card.footer), CONTEXT_TEXT)}]})
    return blocks


def limit_blocks(blocks: list[Block], budget: _Budget, max_blocks: int, t: Translate) -> list[Block]:
    if len(blocks) > max_blocks:
        blocks = blocks[: max_blocks - 1]
        budget.truncated = True
    if budget.truncated:
        blocks = blocks[: max_blocks - 1] + [{"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(t("slack.truncated"))}]}]
    return blocks


def render_reply(reply: Reply, t: Translate, extra_actions: tuple[Action, ...] = (), names: Names = NO_NAMES) -> SlackMessage:
    """`text` (notification / fallback) plus blocks when the reply has a card or buttons.
    `names`: display names of the people and channels the reply names without pinging."""
    budget = _Budget()
    text = budget.fit(mrkdwn(reply.text, names), MESSAGE_TEXT)
    card = reply.card
    if extra_actions:
        card = Card(title="", actions=extra_actions) if card is None else Card(
            card.title, card.body, card.fields, card.actions + extra_actions, card.footer, card.sections)
    if card is None:
        if budget.truncated:
            text, _ = cut(text, MESSAGE_TEXT - len(t("slack.truncated")) - 3)
            text = f"{text}\n_{mrkdwn(t('slack.truncated'))}_"
        return SlackMessage(text=text)
    blocks = [_section(budget.fit(mrkdwn(reply.text, names), SECTION_TEXT))] if reply.text.strip() else []
    blocks += card_blocks(card, budget, names)
    return SlackMessage(text=text, blocks=limit_blocks(blocks, budget, MAX_BLOCKS_MESSAGE, t))


# Modals -------------------------------------------------------------------------
def _plain_obj(text: str, limit: int) -> dict[str, Any]:
    value, _ = cut(plain(text), limit)
    return {"type": "plain_text", "text": value or "…", "emoji": True}


def _input(f: FormField) -> Block:
    element: dict[str, Any]
    if f.kind == "checkbox":
        option = {"text": _plain_obj(f.label, OPTION_TEXT), "value": "true"}
        element = {"type": "checkboxes", "action_id": "value", "options": [option]}
        if f.value.lower() in ("1", "true", "yes", "on"):
            element["initial_options"] = [option]
    elif f.kind == "select" and f.options:
        options = [{"text": _plain_obj(label, OPTION_TEXT), "value": value[:OPTION_VALUE]} for value, label in f.options[:MAX_OPTIONS]]
        element = {"type": "static_select", "action_id": "value", "options": options}
        initial = next((o for o in options if o["value"] == f.value), None)
        if initial is not None:
            element["initial_option"] = initial
    else:
        element = {"type": "plain_text_input", "action_id": "value", "multiline": f.kind == "multiline",
                   "max_length": max(1, min(f.max_length, INPUT_MAX))}
        if f.value:
            element["initial_value"] = f.value[:INPUT_MAX]
    return {"type": "input", "block_id": f.name[:255], "label": _plain_obj(f.label, 2000),
            "element": element, "optional": not f.required}


def render_modal(form: Form, metadata: dict[str, Any], t: Translate, callback_id: str = FORM_CALLBACK) -> dict[str, Any]:
    """A modal for `views.open`; `metadata` (where to answer) travels in private_metadata."""
    meta = json.dumps({**metadata, "cmd": form.submit_command}, separators=(",", ":"))
    if len(meta) > PRIVATE_METADATA:
        meta = json.dumps({"cmd": form.submit_command[:2000]}, separators=(",", ":"))
    blocks = [_input(f) for f in form.fields[:MAX_BLOCKS_VIEW]]
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain_obj(form.title, MODAL_TITLE),
        "submit": _plain_obj(form.submit_label or t("slack.form_submit"), MODAL_TITLE),
        "close": _plain_obj(t("slack.form_cancel"), MODAL_TITLE),
        "private_metadata": meta,
        "blocks": blocks,
    }


def home_view(blocks: list[Block], t: Translate) -> dict[str, Any]:
    budget = _Budget()
    return {"type": "home", "blocks": limit_blocks(blocks, budget, MAX_BLOCKS_VIEW, t)}


def reply_blocks(reply: Reply, budget: _Budget | None = None, names: Names = NO_NAMES) -> list[Block]:
    """A reply as blocks inside another surface (the App Home tab)."""
    budget = budget or _Budget()
    blocks = [_section(budget.fit(mrkdwn(reply.text, names), SECTION_TEXT))] if reply.text.strip() else []
    if reply.card is not None:
        blocks += card_blocks(reply.card, budget, names)
    return blocks

