"""The audit log: who did what and when, for the actions someone may have to answer for
later (granting roles, changing an idea's status, looking up an anonymous idea's author...).
Handlers write it through `ctx.audit(action, detail)`; jobs through `jctx.audit(...)`."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.models.core import AuditLog


def record(session: Session, action: str, detail: str, *, actor_id: int | None, at: datetime) -> AuditLog:
    """Add one entry in `session`'s workspace (stamped by the session's tenant); `actor_id`
    None means the bot itself. It becomes durable with the caller's transaction."""
    row = AuditLog(actor_id=actor_id, action=action, detail=detail, created_at=at)
    session.add(row)
    return row
