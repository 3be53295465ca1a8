"""Console rendering: a title, `key: value` fields, numbered buttons with the command to type.

A terminal has no markup: text is printed as is, people and channels (live or not) as
`@handle` / `#name`, code spans in backticks."""
from __future__ import annotations

from typing import Callable, Sequence

from bot.text import named_text
from bot.types import Card, ConversationRef, Effect, Form, Outbound, UserRef


def plain(text: str, user_name: Callable[[str], str], channel_name: Callable[[str], str]) -> str:
    return named_text(text, user_name, channel_name)


def target_label(outbound: Outbound, user_name: Callable[[str], str], channel_name: Callable[[str], str],
                 t: Callable[..., str]) -> str:
    to = outbound.to
    if isinstance(to, UserRef):
        return f"→ @{user_name(to.id)} ({t('console.dm')})"
    assert isinstance(to, ConversationRef)
    where = t("console.dm") if to.kind == "dm" else "#" + channel_name(to.id)
    if outbound.thread_id:
        where += " › " + t("console.thread")
    if outbound.private_for is not None:
        where += ", " + t("console.only_sees", handle=user_name(outbound.private_for.id))
    return f"[{where}]"


def render_card(card: Card, fmt: Callable[[str], str], command_prefix: str, start: int = 1) -> list[str]:
    lines = [f"┌ {fmt(card.title)}"]
    if card.body:
        lines += ["│ " + line for line in fmt(card.body).splitlines()]
    for key, value in card.fields:
        lines.append(f"│ {fmt(key)}: {fmt(value)}")
    for heading, body in card.sections:
        lines.append(f"│ ── {fmt(heading)}")
        lines += ["│   " + line for line in fmt(body).splitlines()]
    for i, action in enumerate(card.actions, start):
        lines.append(f"│ [{i}] {fmt(action.label)}  ({command_prefix} {action.command})")
    if card.footer:
        lines.append(f"└ {fmt(card.footer)}")
    else:
        lines.append("└")
    return lines


def render_form(form: Form, fmt: Callable[[str], str], form_word: str) -> list[str]:
    lines = [f"┌ {fmt(form.title)} ({form_word})"]
    for f in form.fields:
        req = " *" if f.required else ""
        value = f" = {f.value}" if f.value else ""
        lines.append(f"│ {f.name}{req}: {fmt(f.label)}{value}")
    example = " | ".join(f"{f.name}=…" for f in form.fields)
    lines.append(f"└ /form {example}")
    return lines


RecipientKey = tuple[str, str]


def recipient_of(outbound: Outbound) -> RecipientKey:
    """Who reads a message: ("@", person) for a DM (to the person, or in the DM conversation the
    console names `dm-<handle>`), ("#", conversation) otherwise."""
    to = outbound.to
    if isinstance(to, UserRef):
        return ("@", to.id)
    if to.kind == "dm" and to.id.startswith("dm-"):
        return ("@", to.id[3:])
    return ("#", to.id)


def group_by_recipient(effects: Sequence[Effect]) -> list[tuple[RecipientKey, list[Outbound]]]:
    """The messages among `effects`, grouped by recipient: groups in the order of their first
    message, messages in their order within a group."""
    groups: dict[RecipientKey, list[Outbound]] = {}
    for effect in effects:
        if isinstance(effect, Outbound):
            groups.setdefault(recipient_of(effect), []).append(effect)
    return list(groups.items())


def recipient_label(key: RecipientKey, count: int, channel_name: Callable[[str], str], t: Callable[..., str]) -> str:
    kind, ident = key
    target = f"→ @{ident} ({t('console.dm')})" if kind == "@" else "#" + channel_name(ident)
    return t("console.group", target=target, count=count)
