"""Forms on Matrix: a short guided exchange in a direct chat. Pure: no SDK, no I/O.

Matrix has no modal. A reply carrying a `Form` starts a `FormSession` for its reader: the bot
asks one question per field in the person's direct chat (the options of a select numbered,
a checkbox answered yes or no, an optional field skipped with `-`, a prefilled one kept with
`=`), checks each answer (required, length, choice), and once every field has a value the
form's `submit_command` runs as an addressed `IncomingMessage` with `form_values` and
`via="form"`, in the conversation the form was opened from. `cancel` (or `annuler`) stops.

A session is plain JSON (`dumps`/`loads`): the runtime keeps it in the `matrix_state` table
(adapters/matrix/state.py), so a restart in the middle of a form goes on where it was.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from bot.text import norm_key
from bot.types import ConversationRef, Form, FormField, IncomingMessage, UserRef
from bot.words import Vocabulary, parse_switch

Translate = Callable[..., str]
CANCEL_WORDS = frozenset({"cancel", "annuler"})
SKIP = "-"
KEEP = "="


@dataclass
class FormSession:
    """One person's form in progress."""

    title: str
    submit_command: str
    fields: list[dict[str, Any]]          # FormField as dicts (options as [value, label] lists)
    room_id: str                           # the direct chat the questions are asked in
    origin: dict[str, Any]                 # the ConversationRef the form was opened from
    thread_id: str | None = None
    index: int = 0
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, form: Form, room_id: str, origin: ConversationRef, thread_id: str | None = None) -> "FormSession":
        fields = [{**asdict(f), "options": [list(o) for o in f.options]} for f in form.fields]
        return cls(form.title, form.submit_command, fields, room_id, asdict(origin), thread_id)

    def field(self) -> FormField | None:
        if self.index >= len(self.fields):
            return None
        raw = dict(self.fields[self.index])
        raw["options"] = tuple(tuple(o) for o in raw.get("options") or ())
        return FormField(**raw)

    @property
    def done(self) -> bool:
        return self.index >= len(self.fields)


def dumps(session: FormSession) -> str:
    return json.dumps(asdict(session), ensure_ascii=False)


def loads(text: str) -> FormSession | None:
    try:
        data = json.loads(text)
        return FormSession(**data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None


def question(session: FormSession, t: Translate, prefix: str = "") -> tuple[str, str]:
    """The current question's text (marked text: no markup) and its prompt key."""
    f = session.field()
    if f is None:
        return "", ""
    lines = [t("matrix.form_question", n=session.index + 1, total=len(session.fields), label=f.label,
               title=session.title)]
    if f.kind == "select" and f.options:
        if by_value(f):  # a score (0 … 10): numbering it would make "9" mean the 9th choice, i.e. 8
            lines.append(" · ".join(label.strip() for _value, label in f.options))
            lines.append(t("matrix.form_choose_value"))
        else:
            lines += [f"{n}. {label}" for n, (_value, label) in enumerate(f.options, 1)]
            lines.append(t("matrix.form_choose", last=len(f.options)))
    elif f.kind == "checkbox":
        lines.append(t("matrix.form_yes_no"))
    if f.value:
        shown = f.value
        if f.kind == "select":
            shown = next((label for value, label in f.options if value == f.value), f.value)
        lines.append(t("matrix.form_current", value=shown))
    if not f.required:
        lines.append(t("matrix.form_optional"))
    lines.append(t("matrix.form_cancel_hint"))
    return "\n".join(lines), "matrix.form_question"


@dataclass(frozen=True)
class Step:
    """What an answer did: `error` (a prompt key and its params) to say before asking again,
    `cancelled`, or the session moved on (`session.done`: submit it)."""

    error: tuple[str, Mapping[str, object]] | None = None
    cancelled: bool = False


def is_cancel(text: str) -> bool:
    return norm_key(text) in CANCEL_WORDS


def answer(session: FormSession, text: str, vocab: Vocabulary | None = None) -> Step:
    """Take `text` as the answer to the current question (the session is updated in place)."""
    f = session.field()
    if f is None:
        return Step()
    raw = text.strip()
    if is_cancel(raw):
        return Step(cancelled=True)
    if raw == KEEP and f.value:
        value = f.value
    elif raw == SKIP:
        if f.required:
            return Step(error=("matrix.form_required", {}))
        value = "false" if f.kind == "checkbox" else ""
    elif not raw:
        return Step(error=("matrix.form_required", {}))
    elif f.kind == "select":
        chosen = _choice(f, raw)
        if chosen is None:
            if by_value(f):
                return Step(error=("matrix.form_bad_value", {"values": " · ".join(label.strip() for _v, label in f.options)}))
            return Step(error=("matrix.form_bad_choice", {"last": len(f.options)}))
        value = chosen
    elif f.kind == "checkbox":
        switch = parse_switch(raw, vocab)
        if switch is None:
            return Step(error=("matrix.form_bad_yes_no", {}))
        value = "true" if switch else "false"
    else:
        if len(raw) > f.max_length:
            return Step(error=("matrix.form_too_long", {"max": f.max_length, "length": len(raw)}))
        value = raw
    if f.required and not value:
        return Step(error=("matrix.form_required", {}))
    session.values[f.name] = value
    session.index += 1
    return Step()


def by_value(f: FormField) -> bool:
    """A select whose every choice reads as a number (an eNPS score 0 … 10, a count): its
    choices are shown and answered as they read, not numbered."""
    return bool(f.options) and all(label.strip().isdigit() for _value, label in f.options)


def _choice(f: FormField, raw: str) -> str | None:
    """The value chosen by `raw`: its number in the list as shown (not for a select answered by
    value, whose choices are numbers themselves), else a choice's label or value."""
    stripped = raw.strip().rstrip(".)")
    if not by_value(f) and stripped.isdigit() and 1 <= int(stripped) <= len(f.options):
        return f.options[int(stripped) - 1][0]
    key = norm_key(raw)
    for value, label in f.options:
        if key == norm_key(label):
            return value
    for value, _label in f.options:
        if key == norm_key(value):
            return value
    return None


def submission(session: FormSession, sender: UserRef, event_id: str) -> IncomingMessage:
    """The form's submit command, as the person would have sent it where the form was opened."""
    origin = dict(session.origin)
    conv = ConversationRef(**origin)
    return IncomingMessage(id=f"form:{event_id}", text=session.submit_command, sender=sender, conversation=conv,
                           addressed=True, via="form", form_values=dict(session.values), thread_id=session.thread_id)
