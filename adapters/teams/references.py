"""Stored conversation references: how to reach a conversation or a person proactively.

Synchronous store code (called through `asyncio.to_thread` by the async shell). References
live in the database so any worker process, or the same one after a restart, can reach a
person or a channel proactively.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.db import Database
from store.idempotency import insert_ignore
from store.models.teams import TeamsReference


@dataclass(frozen=True)
class StoredReference:
    conversation_id: str
    kind: str
    user_id: str
    service_url: str
    bot_id: str
    reference: dict[str, Any]


def reference_from_activity(activity: Mapping[str, Any], conversation_id: str) -> dict[str, Any]:
    """Bot Framework's ConversationReference (wire JSON) for the conversation of `activity`.

    Channel references point at the channel itself (no `;messageid=` thread suffix) so a
    proactive post starts a new thread.
    """
    conv = dict(activity.get("conversation") or {})
    conv["id"] = conversation_id
    tenant = (activity.get("channelData") or {}).get("tenant", {}).get("id") if isinstance(activity.get("channelData"), Mapping) else None
    if tenant and not conv.get("tenantId"):
        conv["tenantId"] = tenant
    ref: dict[str, Any] = {
        "bot": activity.get("recipient") or {},
        "conversation": conv,
        "channelId": activity.get("channelId") or "msteams",
        "serviceUrl": activity.get("serviceUrl") or "",
    }
    if activity.get("locale"):
        ref["locale"] = activity["locale"]
    return ref


def save_reference(session: Session, tenant: str, *, conversation_id: str, kind: str, user_id: str, team_id: str,
                   reference: Mapping[str, Any], now: datetime, installed: bool = True) -> None:
    values = dict(conversation_id=conversation_id[:300], kind=kind, user_id=user_id[:200], team_id=team_id[:300],
                  service_url=str(reference.get("serviceUrl") or "")[:500],
                  bot_id=str((reference.get("bot") or {}).get("id") or "")[:200],
                  reference=json.dumps(reference, ensure_ascii=False), installed=installed, updated_at=now)
    if not insert_ignore(session, TeamsReference, {"tenant": tenant, **values}):
        session.execute(update(TeamsReference).where(TeamsReference.tenant == tenant,
                                                     TeamsReference.conversation_id == values["conversation_id"]).values(**values))


def _stored(row: TeamsReference | None) -> StoredReference | None:
    if row is None:
        return None
    try:
        reference = json.loads(row.reference)
    except ValueError:
        return None
    return StoredReference(row.conversation_id, row.kind, row.user_id, row.service_url, row.bot_id, reference)


def for_conversation(session: Session, conversation_id: str) -> StoredReference | None:
    """The reference of a conversation the bot is still installed in."""
    return _stored(session.scalar(select(TeamsReference).where(TeamsReference.conversation_id == conversation_id,
                                                               TeamsReference.installed.is_(True))))


def personal_chat(session: Session, user_id: str) -> StoredReference | None:
    row = session.scalar(select(TeamsReference).where(TeamsReference.user_id == user_id, TeamsReference.kind == "dm",
                                                      TeamsReference.installed.is_(True))
                         .order_by(TeamsReference.updated_at.desc()).limit(1))
    return _stored(row)


def any_reference(session: Session) -> StoredReference | None:
    """Any reference of the tenant: gives the service URL and bot id to open a personal chat."""
    row = session.scalar(select(TeamsReference).where(TeamsReference.service_url != "")
                         .order_by(TeamsReference.updated_at.desc()).limit(1))
    return _stored(row)


def remember(db: Database, tenant: str, conversation_id: str, reference: Mapping[str, Any], ref_kind: str,
             user_id: str, team_id: str, now: datetime, installed: bool = True) -> None:
    """Store the conversation reference of a turn's activity, in one short transaction."""
    with db.session(tenant) as session:
        save_reference(session, tenant, conversation_id=conversation_id, kind=ref_kind, user_id=user_id,
                       team_id=team_id, reference=reference, now=now, installed=installed)
