"""Small helpers shared by the contribution handlers (ideas, help requests, kudos, fresh skills).

No `register` here: handler discovery imports this module and finds nothing to register.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterator, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.context import Ctx, JobCtx, UserError, zone
from bot.text import MARK_CLOSE, MARK_OPEN
from bot.types import Form, FormField, IncomingMessage, Reply
from store.models.core import Conversation, Person, Workspace

Row = TypeVar("Row")

# A person in command text: an adapter's marker, a sanitised marker "(@U1)", or a typed @handle.
PEOPLE_TOKEN = re.compile(
    MARK_OPEN + r"@[^" + MARK_CLOSE + r"]+" + MARK_CLOSE + r"|\(@[^\s()]+\)|(?<![\w@])@[\w.\-]+"
)
TOPIC_SEP = "|"
_TRUE = frozenset({"1", "true", "yes", "y", "on", "oui", "o", "x", "checked", "anonymous", "anonyme"})
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def strip_people(text: str) -> str:
    return PEOPLE_TOKEN.sub(" ", text)


def join_topics(labels: "list[str] | tuple[str, ...]") -> str:
    """Topic labels may contain spaces ("appel d'offres"): stored separated by `|`."""
    return TOPIC_SEP.join(label.replace(TOPIC_SEP, " ").strip() for label in labels if label.strip())


def split_topics(stored: str) -> list[str]:
    return [t for t in stored.split(TOPIC_SEP) if t.strip()]


def truthy(value: object) -> bool:
    """A checkbox value as adapters send it ("true", "on", "yes", a list with a value...)."""
    if isinstance(value, (list, tuple)):
        return any(truthy(v) for v in value)
    return str(value or "").strip().casefold() in _TRUE


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of `now`'s local day in `tz`, as an aware datetime (for daily allowances)."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(timezone.utc)


def actor_day_start(ctx: Ctx) -> datetime:
    return day_start(ctx.now(), ctx.tz())


def parse_day(token: str) -> date | None:
    """`2026-12-15` or `15/12/2026`; None when it is not a real date."""
    token = token.strip().rstrip(".,;")
    m = _ISO.match(token)
    parts = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    if parts is None:
        m = _DMY.match(token)
        parts = (int(m.group(3)), int(m.group(2)), int(m.group(1))) if m else None
    if parts is None:
        return None
    try:
        return date(*parts)
    except ValueError:
        return None


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after `day` in `tz`: "until the 15th" includes the 15th."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(timezone.utc)


def conversation_zone(conversation: Conversation | None, fallback: str | None) -> ZoneInfo:
    return zone((conversation.tz if conversation is not None and conversation.tz else None) or fallback)


def claimed_escalations(jctx: JobCtx, due: Callable[[Session, datetime], Any],
                        claim: Callable[[Session, int, datetime], bool], model: type[Row],
                        owner_id: Callable[[Row], int]) -> Iterator[tuple[Session, Ctx, Row]]:
    """The escalation loop help requests and suggestions share: each due row, claimed once in its
    workspace's session (another process that claimed it first wins), with a context acting as
    its owner (asker, author) in the row's conversation. The caller's work runs inside that
    session: it commits with the claim when the caller moves on to the next row."""
    for tenant, row_id in due(jctx.session, jctx.now):
        with jctx.services.db.session(tenant) as session:
            if not claim(session, row_id, jctx.now):
                continue
            row = session.get(model, row_id)
            workspace = session.get(Workspace, tenant)
            owner = session.get(Person, owner_id(row)) if row is not None else None
            if row is None or workspace is None or owner is None:
                continue
            conversation_id = getattr(row, "conversation_id", None)
            conv = session.get(Conversation, conversation_id) if conversation_id else None
            yield session, jctx.acting_as(session, workspace, owner, conv), row


def written_text(ctx: Ctx, msg: "IncomingMessage", typed: str, *, field: str, limit: int, form_title: str,
                 field_label: str, submit_label: str, submit_command: str, form_key: str, **params: object) -> "str | Reply":
    """The text of a written step (an answer, a reason): typed after the command or sent by its
    form. With neither, the form asking for it (a private reply under `form_key`); over `limit`
    characters, refused with the length."""
    text = typed.strip() or str((msg.form_values or {}).get(field, "")).strip()
    if not text:
        form = Form(title=form_title, submit_command=submit_command, submit_label=submit_label,
                    fields=(FormField(field, field_label, kind="multiline", required=True, max_length=limit),))
        return ctx.reply(form_key, private=True, form=form, **params)
    if len(text) > limit:
        raise UserError("suggestions.too_long", limit=limit, length=len(text))
    return text
