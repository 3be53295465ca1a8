"""The notification queue: pending pings as rows, claimed by conditional UPDATEs so
several worker processes flush each row exactly once."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from store.db import ALL_TENANTS, TenantError
from store.idempotency import insert_ignore
from store.models.core import Person, Workspace
from store.models.notifications import Notification, NotifySettings


@dataclass(frozen=True)
class Budget:
    """A person's effective budget: their own settings over the workspace defaults."""

    daily_cap: int
    quiet_hours: str          # "HH:MM-HH:MM" or "off"
    snooze_until: datetime | None


def settings_row(session: Session, person_id: int) -> NotifySettings | None:
    return session.scalar(select(NotifySettings).where(NotifySettings.person_id == person_id))


def settings_for_update(session: Session, person_id: int) -> NotifySettings:
    """The person's row, created if missing with INSERT … ON CONFLICT DO NOTHING: two commands
    of one person changing their settings at once find the same row, no failure."""
    tenant = session.info.get("tenant")
    if tenant in (None, ALL_TENANTS):
        raise TenantError("notification settings belong to one workspace")
    insert_ignore(session, NotifySettings, {"tenant": tenant, "person_id": person_id})
    row = settings_row(session, person_id)
    assert row is not None
    return row


def budget(session: Session, person_id: int, default_cap: int, default_quiet: str) -> Budget:
    row = settings_row(session, person_id)
    if row is None:
        return Budget(default_cap, default_quiet, None)
    return Budget(
        row.daily_cap if row.daily_cap is not None else default_cap,
        row.quiet_hours or default_quiet,
        row.snooze_until,
    )


def enqueue(
    session: Session,
    tenant: str,
    person_id: int,
    key: str,
    params: dict[str, Any],
    *,
    thread_key: str | None,
    urgent: bool,
    actions: Sequence[tuple[str, str, str]],
    now: datetime,
) -> Notification | None:
    """Queue a ping; None when this person was already pinged for `thread_key`."""
    values = {
        "tenant": tenant, "person_id": person_id, "key": key, "params": params, "actions": [list(a) for a in actions],
        "thread_key": thread_key, "urgent": urgent, "status": "pending", "created_at": now,
    }
    if thread_key is not None:
        if not insert_ignore(session, Notification, values):
            return None
        return session.scalar(select(Notification).where(Notification.person_id == person_id, Notification.thread_key == thread_key))
    row = Notification(**values)
    session.add(row)
    session.flush()
    return row


def sent_since(session: Session, person_id: int, since: datetime) -> int:
    """Pings delivered to this person since `since` (what the daily cap counts)."""
    return session.scalar(
        select(func.count(Notification.id)).where(
            Notification.person_id == person_id, Notification.status == "sent", Notification.sent_at >= since
        )
    ) or 0


def messages_since(session: Session, person_id: int, since: datetime) -> int:
    """Direct messages those pings made: a grouped DM's pings share one `sent_at`."""
    return session.scalar(
        select(func.count(func.distinct(Notification.sent_at))).where(
            Notification.person_id == person_id, Notification.status == "sent", Notification.sent_at >= since
        )
    ) or 0


def mark(session: Session, rows: Sequence[Notification], status: str, now: datetime) -> None:
    for row in rows:
        row.status = status
        row.sent_at = now if status == "sent" else None
    session.flush()


def people_with_due(session: Session, now: datetime, group: timedelta, limit: int = 500) -> list[int]:
    """People whose oldest pending ping has waited a whole grouping window (or is urgent)."""
    query = (
        select(Notification.person_id)
        .where(Notification.status == "pending", or_(Notification.created_at <= now - group, Notification.urgent))
        .group_by(Notification.person_id)
        .order_by(func.min(Notification.created_at))
        .limit(limit)
    )
    return list(session.scalars(query))


def claim_pending(session: Session, person_id: int) -> list[Notification]:
    """Take every pending ping of a person for this worker. A concurrent worker's UPDATE
    finds no row still `pending` (PostgreSQL re-checks the WHERE after the row lock;
    SQLite serialises writers), so each row is claimed once."""
    token = uuid.uuid4().hex
    session.execute(
        update(Notification)
        .where(Notification.person_id == person_id, Notification.status == "pending")
        .values(status="claimed", claim_token=token)
        .execution_options(synchronize_session=False)
    )
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.claim_token == token)
            .order_by(Notification.created_at, Notification.id)
            .execution_options(populate_existing=True)
        )
    )


def person_and_workspace(session: Session, person_id: int) -> tuple[Person, Workspace] | None:
    person = session.get(Person, person_id)
    if person is None:
        return None
    workspace = session.get(Workspace, person.tenant)
    return (person, workspace) if workspace is not None else None


def purge_before(session: Session, cutoff: datetime) -> int:
    """Drop delivered or capped pings older than `cutoff` (retention)."""
    result = session.execute(
        delete(Notification).where(Notification.status.in_(("sent", "capped")), Notification.created_at < cutoff)
    )
    return int(result.rowcount or 0)


def forget_person(session: Session, person_id: int) -> None:
    session.execute(delete(Notification).where(Notification.person_id == person_id))
    session.execute(delete(NotifySettings).where(NotifySettings.person_id == person_id))


def export_person(session: Session, person_id: int) -> dict[str, Any]:
    row = settings_row(session, person_id)
    pings = session.scalars(select(Notification).where(Notification.person_id == person_id).order_by(Notification.id))
    return {
        "notification_settings": None if row is None else {
            "daily_cap": row.daily_cap, "quiet_hours": row.quiet_hours,
            "snooze_until": row.snooze_until.isoformat() if row.snooze_until else None,
        },
        "notifications": [
            {"key": n.key, "params": n.params, "status": n.status, "created_at": n.created_at.isoformat(),
             "sent_at": n.sent_at.isoformat() if n.sent_at else None}
            for n in pings
        ],
    }
