"""Queries and upserts for workspaces, people, conversations and roles."""
from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Any, Callable, Iterable, Sequence, TypeVar

from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, Connection, Engine, Select, and_, bindparam, create_engine, func, inspect, or_, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached
from sqlalchemy.pool import NullPool

from bot.text import norm_key
from bot.types import ConversationRef, UserRef
from store.db import ALL_TENANTS
from store import cursor_sql
from store.idempotency import insert_ignore
from store.models.base import UTCDateTime, utcnow
from store.models.core import Conversation, ConversationMember, Person, Role, Workspace
from store.models.social import IndexOptOut


log = logging.getLogger(__name__)
T = TypeVar("T")
SIDE_LOCK_TIMEOUT_MS = 5000
_EVENT_OPT_OUT = "event_opt_out"  # session.info: (tenant, person id, opted out) read by this event's event_rows


@dataclass(frozen=True)
class EventRows:
    """The rows one event's context is built from, read in a single query (None: not stored yet)."""

    workspace: Workspace | None
    person: Person | None
    conversation: Conversation | None
    member: bool


def event_rows(session: Session, tenant: str, user_id: str, conversation_id: str | None, *,
               join_at: datetime | None = None) -> EventRows:
    """The workspace, the person, the conversation and whether the person is a member of it,
    in one round trip instead of one per row. Always read, never cached, so every process sees
    the latest language, deactivation and membership written by any other. Whether the person
    opted out of indexing is read with them, for this event's indexing only
    (`event_opt_out`).

    `join_at` (the event's time, for an event by the person in that conversation, not a DM):
    on PostgreSQL the same statement also records the membership the event shows when the
    person and a conversation that is not a DM are stored and the membership is not (as
    `add_member` would, INSERT … ON CONFLICT DO NOTHING), and `member` is then True. Elsewhere,
    or when a row is missing, the caller adds it.

    Every event reads them: a Core statement built once, its rows made session objects
    without the ORM's query machinery (which cost three times the query itself). A row the
    session already holds is kept as it is, as an ORM query would keep it. The session's
    tenant guard applies as to any query: another tenant's people and conversations are None."""
    scope = session.info.get("tenant")
    params: dict[str, Any] = {"tenant": tenant, "user_id": user_id, "conversation_id": conversation_id,
                              "scope": tenant if scope in (None, ALL_TENANTS) else scope}
    joining = join_at is not None and conversation_id is not None and session.get_bind().dialect.name == "postgresql"
    if joining:  # straight on the driver's cursor (store/cursor_sql.py): every event runs it
        sql, constants, stamps = _event_rows_joining_pg_sql()
        row = cursor_sql.first_row(session, sql, {**constants, **params, "join_at": join_at})
        if row is not None:
            row = tuple(_utc(v) if i in stamps else v for i, v in enumerate(row))
    else:
        row = session.connection().execute(_event_rows_query(conversation_id is not None), params).first()
    end_event(session)
    if row is None:
        return EventRows(None, None, None, False)
    joined = row[-1] is not None if joining else False
    if joining:
        row = row[:-1]
    workspace = _attached(session, Workspace, row, 0)
    person = _attached(session, Person, row, _PERSON_AT)
    if person is not None:
        session.info[_EVENT_OPT_OUT] = (tenant, person.id, row[-1] is not None)
    if conversation_id is None:
        return EventRows(workspace, person, None, False)
    member = row[-2] is not None or joined
    return EventRows(workspace, person, _attached(session, Conversation, row, _CONVERSATION_AT), member)


_PERSON_AT = len(Workspace.__table__.c)
_CONVERSATION_AT = _PERSON_AT + len(Person.__table__.c)


def _attached(session: Session, model: type[T], row: Any, at: int) -> T | None:
    """The `model` object whose columns start at `row[at]`, in `session`: the one the session
    holds already, else a new persistent object holding those values (None: no such row)."""
    if row[at] is None:  # the primary key (first column) of an outer-joined row that is missing
        return None
    mapper, names = _shape(model)
    held = session.identity_map.get(mapper.identity_key_from_primary_key((row[at],)))
    if held is not None:
        return held  # type: ignore[no-any-return]
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(zip(names, row[at:at + len(names)]))  # as a query loads it: no attribute events
    make_transient_to_detached(obj)
    session.add(obj)
    return obj  # type: ignore[no-any-return]


@cache
def _shape(model: type) -> tuple[Any, tuple[str, ...]]:
    """`model`'s mapper, configured (a process that has run no ORM query yet has not), and its
    attribute names in its table's column order."""
    configure_mappers()
    mapper = inspect(model)
    return mapper, tuple(mapper.get_property_by_column(column).key for column in model.__table__.c)  # type: ignore[attr-defined]


def event_opt_out(session: Session, tenant: str, person_id: int) -> bool | None:
    """Whether `person_id` opted out of indexing, as this event's `event_rows` read it in this
    transaction (None: not read with this event; read it). Taken once: a later question, after
    this event wrote something, reads again."""
    read = session.info.pop(_EVENT_OPT_OUT, None)
    if read is None or read[:2] != (tenant, person_id):
        return None
    return bool(read[2])


def end_event(session: Session) -> None:
    """The event is over: what its `event_rows` read is not the next one's to use."""
    session.info.pop(_EVENT_OPT_OUT, None)


@cache
def _event_rows_query(with_conversation: bool) -> Select[Any]:
    """Built once, not on every event (composing it was a good part of its cost). Run as Core,
    so the tenant guard does not add its criteria: every workspace table is limited to the
    guard's tenant (`scope`) here."""
    scope = bindparam("scope")
    ws, person = Workspace.__table__, Person.__table__
    query = select(*ws.c, *person.c).select_from(ws).outerjoin(
        person, and_(person.c.tenant == ws.c.id, person.c.tenant == scope, person.c.external_id == bindparam("user_id")))
    if with_conversation:
        conv, member = Conversation.__table__, ConversationMember.__table__
        query = (
            query.add_columns(*conv.c, member.c.id)
            .outerjoin(conv, and_(conv.c.tenant == ws.c.id, conv.c.tenant == scope,
                                  conv.c.external_id == bindparam("conversation_id")))
            .outerjoin(member, and_(member.c.tenant == scope, member.c.conversation_id == conv.c.id,
                                    member.c.person_id == person.c.id))
        )
    opt_out = IndexOptOut.__table__
    query = query.add_columns(opt_out.c.id).outerjoin(
        opt_out, and_(opt_out.c.tenant == ws.c.id, opt_out.c.tenant == scope, opt_out.c.person_id == person.c.id))
    return query.where(ws.c.id == bindparam("tenant"))


@cache
def _event_rows_joining_pg() -> Select[Any]:
    """`_event_rows_query` with the membership insert of `event_rows(..., join_at=...)`: the
    read as a CTE, the insert from it (a data-modifying CTE runs whether or not it is read), and
    the read's columns followed by the inserted membership's id (NULL: none inserted)."""
    from sqlalchemy.dialects.postgresql import insert

    read = _event_rows_query(True).set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL).cte("event")
    member = ConversationMember.__table__
    conv_id, person_id = read.c.conversations_id, read.c.people_id
    joined = (
        insert(member)
        .from_select(["tenant", "conversation_id", "person_id", "joined_at"],
                     select(read.c.conversations_tenant, conv_id, person_id,
                            bindparam("join_at", type_=member.c.joined_at.type))
                     .where(conv_id.is_not(None), person_id.is_not(None), read.c.conversation_members_id.is_(None),
                            read.c.conversations_kind != "dm"))
        .on_conflict_do_nothing()
        .returning(member.c.id)
        .cte("joined")
    )
    return select(*read.c, select(joined.c.id).scalar_subquery())


@cache
def _event_rows_joining_pg_sql() -> tuple[str, dict[str, Any], frozenset[int]]:
    """`_event_rows_joining_pg` as psycopg's SQL, the constants it binds, and the positions of
    its UTCDateTime columns (the driver gives them in the session's time zone)."""
    from sqlalchemy.dialects.postgresql import psycopg

    statement = _event_rows_joining_pg()
    compiled = statement.compile(dialect=psycopg.dialect())
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    stamps = frozenset(i for i, column in enumerate(statement.selected_columns) if isinstance(column.type, UTCDateTime))
    return str(compiled), constants, stamps


def _utc(value: Any) -> Any:
    """A UTCDateTime column's value as the ORM would load it: aware, in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def ensure_workspace(session: Session, tenant: str, platform: str, default_locale: str) -> Workspace:
    """The tenant's workspace, created on first use. A tenant's first events often arrive
    together (an installation), in several threads or processes: INSERT … ON CONFLICT DO
    NOTHING lets all of them go on with the one row instead of failing on the unique key."""
    ws = session.get(Workspace, tenant)
    if ws is None:
        insert_ignore(session, Workspace, {"id": tenant, "platform": platform, "default_locale": default_locale})
        ws = session.get(Workspace, tenant)
        assert ws is not None
    return ws


def upsert_person(session: Session, user: UserRef, now: datetime) -> Person:
    return sync_person(session, session.scalar(select(Person).where(Person.external_id == user.id)), user, now)


def sync_person(session: Session, person: Person | None, user: UserRef, now: datetime) -> Person:
    """`person` as stored for `user` (None: create it), updated with what the event tells.

    A new person's first messages often arrive together, in several threads or processes:
    every one of them must go on with the one row instead of failing on the unique key (and
    losing the message), so the row is created with INSERT … ON CONFLICT DO NOTHING and read."""
    if person is None:
        tenant = _tenant_of(session, user.tenant)
        name = user.display_name or user.id
        _create_person(session, {
            "tenant": tenant, "external_id": user.id, "handle": name, "display_name": name,
            "is_bot": user.is_bot, "created_at": now, "updated_at": now,
        })
        person = session.scalar(select(Person).where(Person.tenant == tenant, Person.external_id == user.id))
        assert person is not None
    if user.display_name and not person.display_name:
        person.display_name = user.display_name
    return person


def _create_person(session: Session, values: dict[str, object]) -> None:
    """Insert a person unless present. On PostgreSQL in a transaction of its own, committed at
    once: an insert waits for another transaction's uncommitted row with the same key, so an
    event holding its new sender's row while it creates a mentioned person could wait for an
    event doing the same the other way round (two new people mentioning each other) — a
    deadlock that loses a message. A person committed alone is only an identity the platform
    already knows, harmless if the event then fails. (SQLite runs one writer at a time: no
    such wait, and a second connection would wait for this session's own lock.)"""
    if not insert_aside(session, _insert_person_pg, [values], "a person"):
        insert_ignore(session, Person, values)


def insert_aside(session: Session, statement: Callable[[], Any], rows: list[dict[str, Any]], what: str) -> bool:
    """PostgreSQL: `statement()` (an INSERT … ON CONFLICT DO NOTHING of rows that are only
    identities, harmless if the work then fails) in a transaction of its own, committed at
    once, for the reason `_create_person` gives; an inbox batch (bot/unit.py) would otherwise
    hold them until its end and make every other worker wait. False on SQLite, or when that
    transaction failed: the caller inserts in its own."""
    engine = _engine_of(session)
    if engine.dialect.name != "postgresql":
        return False
    try:
        with _first_sight_engine(engine).begin() as conn:
            # Bounded: were this very session holding the same new row, waiting would never end.
            conn.execute(text(f"SET LOCAL lock_timeout = '{SIDE_LOCK_TIMEOUT_MS}ms'"))
            conn.execute(statement(), rows)
        return True
    except OperationalError:
        log.warning("first sight of %s: the side transaction failed; inserting in the event's own", what)
        return False


@cache
def _insert_person_pg() -> Any:
    from sqlalchemy.dialects.postgresql import insert

    return insert(Person.__table__).on_conflict_do_nothing()


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


_SIDE_ENGINES: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()
_SIDE_LOCK = threading.Lock()


def _first_sight_engine(engine: Engine) -> Engine:
    """An engine without a pool for those one-row transactions: borrowing a second connection
    from the main pool while every thread holds one could exhaust it."""
    with _SIDE_LOCK:
        side = _SIDE_ENGINES.get(engine)
        if side is None:
            side = _SIDE_ENGINES[engine] = create_engine(engine.url, poolclass=NullPool)
        return side


def upsert_conversation(session: Session, conv: ConversationRef, now: datetime) -> Conversation:
    return sync_conversation(session, session.scalar(select(Conversation).where(Conversation.external_id == conv.id)), conv, now)


def sync_conversation(session: Session, row: Conversation | None, conv: ConversationRef, now: datetime) -> Conversation:
    """`row` as stored for `conv` (None: create it, race-free like `sync_person`), updated
    with what the event tells."""
    if row is None:
        tenant = _tenant_of(session, conv.tenant)
        inserted = insert_ignore(session, Conversation, {
            "tenant": tenant, "external_id": conv.id, "name": conv.name or conv.id, "kind": conv.kind, "created_at": now,
        })
        row = session.scalar(select(Conversation).where(Conversation.tenant == tenant, Conversation.external_id == conv.id))
        assert row is not None
        if inserted:
            return row
    # Another event may have created the row a moment ago, from a payload that said less.
    if conv.name and row.name != conv.name:
        row.name = conv.name
    # Privacy: an event may only make a conversation more private. Some payloads lack the
    # channel type (Slack app_mention, slash commands) and would otherwise turn a private
    # channel "public" and open its indexed messages to everyone.
    if conv.kind != row.kind and conv.kind in ("private", "group", "dm"):
        row.kind = conv.kind
    return row


def ensure_member(session: Session, conversation: Conversation, person: Person, now: datetime | None = None) -> None:
    add_member(session, conversation, person, now)


def add_member(session: Session, conversation: Conversation, person: Person, now: datetime | None = None) -> bool:
    """Make `person` a member of `conversation` (INSERT … ON CONFLICT DO NOTHING: a membership
    another event just recorded is no error). True when the membership is new."""
    return insert_ignore(session, ConversationMember, {
        "tenant": conversation.tenant, "conversation_id": conversation.id, "person_id": person.id,
        "joined_at": now if now is not None else utcnow(),
    })


def _tenant_of(session: Session, ref_tenant: str) -> str:
    """The tenant new rows belong to: the session's (the guard would stamp it), or the event's
    in a session over all tenants."""
    tenant = session.info.get("tenant")
    return ref_tenant if tenant in (None, ALL_TENANTS) else tenant


def find_person(session: Session, token: str) -> Person | None:
    """By platform id, @handle, display name or e-mail (case- and accent-insensitive for names)."""
    raw = token.strip()
    token = raw.lstrip("@")
    if not token:
        return None
    # A Matrix user id starts with "@" (@thomas:example.org): the raw token is tried as an id too.
    found = session.scalar(select(Person).where(Person.external_id.in_({raw, token})).order_by(Person.id))
    if found is not None:
        return found
    lowered = token.casefold()
    found = session.scalar(
        select(Person)
        .where(or_(func.lower(Person.handle) == lowered, func.lower(Person.email) == lowered))
        .order_by(Person.active.desc(), Person.id)
    )
    if found is not None:
        return found
    key = norm_key(token)
    for person in session.scalars(select(Person).where(func.lower(Person.display_name).contains(lowered[:3]))):
        if norm_key(person.display_name) == key:
            return person
    return None


def find_conversation(session: Session, token: str) -> Conversation | None:
    token = token.strip().lstrip("#")
    if not token:
        return None
    found = session.scalar(select(Conversation).where(Conversation.external_id == token))
    if found is not None:
        return found
    return session.scalar(select(Conversation).where(func.lower(Conversation.name) == token.casefold()))


def people_by_ids(session: Session, ids: Iterable[int]) -> dict[int, Person]:
    ids = list(set(ids))
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}


def has_role(session: Session, person: Person, roles: Sequence[str], conversation: Conversation | None) -> bool:
    query = select(Role.id).where(Role.person_id == person.id, Role.role.in_(list(roles)),
                                  Role.scope_kind.is_(None))  # a department's référent is no channel's
    if conversation is None:
        query = query.where(Role.conversation_id.is_(None))
    else:
        query = query.where(or_(Role.conversation_id == conversation.id, Role.conversation_id.is_(None)))
    return session.scalar(query.limit(1)) is not None


def role_holders(session: Session, roles: Sequence[str], conversation: Conversation | None) -> list[Person]:
    query = select(Person).join(Role, Role.person_id == Person.id).where(Role.role.in_(list(roles)), Person.active,
                                                                         Role.scope_kind.is_(None))
    if conversation is None:
        query = query.where(Role.conversation_id.is_(None))
    else:
        query = query.where(or_(Role.conversation_id == conversation.id, Role.conversation_id.is_(None)))
    return list(session.scalars(query.distinct().order_by(Person.display_name)))
