"""Who is responsible for a person or a channel: the référents (and animators) by scope.

A role is held for a channel (`Role.conversation_id`), for a department, a site or a language
(the scope kind and value of issue 15, when the Role model has them), or everywhere (none of
those). `responsible` walks the chain a suggestion or a request follows: the channel's
référents, else the person's department's, else their site's, else the référents of
everywhere, else the admins, and says which steps found no one (so the person can be told).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy import ColumnElement, and_, event, func, or_, select, true
from sqlalchemy.orm import Session

from store.memo import memo
from store.models.core import Conversation, ConversationMember, Person, Role

if TYPE_CHECKING:
    from store.models.referents import WelcomeText

ROUTE_KINDS = ("channel", "department", "site", "everywhere", "admins")


def _scope_columns() -> tuple[Any, Any] | None:
    """The Role columns naming a scope kind and its value (issue 15), if the model has them."""
    for kind, value in (("scope_kind", "scope_value"), ("scope", "scope_value"), ("scope_type", "scope_value")):
        if hasattr(Role, kind) and hasattr(Role, value):
            return getattr(Role, kind), getattr(Role, value)
    return None


def _unscoped() -> ColumnElement[bool]:
    cols = _scope_columns()
    if cols is None:
        return true()
    kind, value = cols
    return or_(kind.is_(None), kind == "", kind == "everywhere", kind == "workspace")


def scoped(kind: str, value: str) -> ColumnElement[bool] | None:
    """A clause on Role: held for `kind` (department, site, language) `value`, any case;
    None when roles have no scope yet."""
    cols = _scope_columns()
    if cols is None or not value.strip():
        return None
    kind_col, value_col = cols
    return and_(kind_col == kind, func.lower(value_col) == value.strip().lower())


@dataclass(frozen=True)
class Route:
    """Where something was routed: `kind` one of ROUTE_KINDS, `value` the channel's name, the
    department or the site; `people` who receive it; `missed` the steps tried before that found
    no one, as (kind, value) pairs (value "" for a person without a department or site)."""

    kind: str
    value: str
    people: tuple[Person, ...]
    missed: tuple[tuple[str, str], ...] = field(default=())


def holders(session: Session, roles: Sequence[str], clause: ColumnElement[bool]) -> list[Person]:
    query = (select(Person).join(Role, Role.person_id == Person.id)
             .where(Role.role.in_(list(roles)), Person.active, ~Person.is_bot, clause))
    return list(session.scalars(query.distinct().order_by(Person.display_name, Person.id)))


def of_channel(session: Session, conversation: Conversation, roles: Sequence[str] = ("referent",)) -> list[Person]:
    return holders(session, roles, Role.conversation_id == conversation.id)


def of_scope(session: Session, kind: str, value: str, roles: Sequence[str] = ("referent",)) -> list[Person]:
    clause = scoped(kind, value)
    return holders(session, roles, clause) if clause is not None else []


def everywhere(session: Session, roles: Sequence[str] = ("referent",)) -> list[Person]:
    return holders(session, roles, and_(Role.conversation_id.is_(None), _unscoped()))


def admins(session: Session, admin_ids: Iterable[str]) -> list[Person]:
    """The people the settings name as admins (by platform id, handle or e-mail)."""
    ids = {a.casefold() for a in admin_ids if a}
    if not ids:
        return []
    query = select(Person).where(Person.active, ~Person.is_bot, or_(
        func.lower(Person.external_id).in_(ids), func.lower(Person.handle).in_(ids), func.lower(Person.email).in_(ids)))
    return list(session.scalars(query.order_by(Person.display_name, Person.id)))


def responsible(session: Session, person: Person, conversation: Conversation | None, admin_ids: Iterable[str], *,
                channel_roles: Sequence[str] = ("referent",), exclude: Iterable[int] = ()) -> Route:
    """The référents responsible for `person` writing in `conversation` (None or a DM: no
    channel step): the first step of the chain that finds someone other than `exclude`."""
    skip = set(exclude)
    missed: list[tuple[str, str]] = []

    def keep(people: Iterable[Person]) -> tuple[Person, ...]:
        return tuple(p for p in people if p.id not in skip)

    if conversation is not None and conversation.kind != "dm":
        found = keep(of_channel(session, conversation, channel_roles))
        if found:
            return Route("channel", conversation.name, found)
        missed.append(("channel", conversation.name))
    for kind in ("department", "site"):
        value = (getattr(person, kind) or "").strip()
        found = keep(of_scope(session, kind, value)) if value else ()
        if found:
            return Route(kind, value, found, tuple(missed))
        missed.append((kind, value))
    found = keep(everywhere(session))
    if found:
        return Route("everywhere", "", found, tuple(missed))
    missed.append(("everywhere", ""))
    return Route("admins", "", keep(admins(session, admin_ids)), tuple(missed))


def scope_of(session: Session, person: Person, admin: bool) -> tuple[bool, set[int], set[str], set[str]]:
    """What `person` answers for: (everything, channel ids, departments, sites) — everything
    for an admin or a référent of everywhere; departments and sites lowercased."""
    if admin:
        return True, set(), set(), set()
    rows = list(session.execute(select(Role).where(Role.person_id == person.id, Role.role == "referent")).scalars())
    channels: set[int] = set()
    departments: set[str] = set()
    sites: set[str] = set()
    cols = _scope_columns()
    for row in rows:
        kind = getattr(row, cols[0].key) if cols else None
        value = (getattr(row, cols[1].key) or "") if cols else ""
        if row.conversation_id is not None:
            channels.add(row.conversation_id)
        elif kind == "department":
            departments.add(value.lower())
        elif kind == "site":
            sites.add(value.lower())
        elif not kind or kind in ("everywhere", "workspace"):
            return True, set(), set(), set()
    return False, channels, departments, sites


def is_referent(session: Session, person: Person) -> bool:
    return session.scalar(select(Role.id).where(Role.person_id == person.id, Role.role == "referent").limit(1)) is not None


def conversation_named(session: Session, name: str) -> Conversation | None:
    """A channel (not a DM) called `name`, any case."""
    return session.scalar(select(Conversation).where(func.lower(Conversation.name) == name.lower(), Conversation.kind != "dm")
                          .limit(1))


def is_member(session: Session, conversation_id: int, person_id: int) -> bool:
    return session.scalar(select(ConversationMember.id).where(ConversationMember.conversation_id == conversation_id,
                                                              ConversationMember.person_id == person_id)) is not None


def people_ids(session: Session, external_ids: Sequence[str]) -> list[int]:
    if not external_ids:
        return []
    return list(session.scalars(select(Person.id).where(Person.external_id.in_(list(external_ids)))))


# Welcome texts and first times --------------------------------------------------------------
def welcome_text(session: Session, conversation_id: int) -> "WelcomeText | None":
    from store.models.referents import WelcomeText

    return session.scalar(select(WelcomeText).where(WelcomeText.conversation_id == conversation_id))


def set_welcome(session: Session, tenant: str, conversation_id: int, *, by: int, now: datetime,
                locale: str | None = None, text: str | None = None, enabled: bool | None = None) -> "WelcomeText":
    """One row per channel (INSERT … ON CONFLICT DO NOTHING, then update): the text in `locale`
    and/or the switch."""
    from store.idempotency import insert_ignore
    from store.models.referents import WelcomeText

    insert_ignore(session, WelcomeText, {"tenant": tenant, "conversation_id": conversation_id, "text_en": "", "text_fr": "",
                                         "enabled": True, "updated_by": by, "updated_at": now})
    row = welcome_text(session, conversation_id)
    assert row is not None
    if text is not None and locale in ("en", "fr"):
        setattr(row, f"text_{locale}", text)
    if enabled is not None:
        row.enabled = enabled
    row.updated_by, row.updated_at = by, now
    session.flush()
    return row


def animated_channels(session: Session) -> frozenset[int]:
    """The channels with at least one animator (active, not a bot): one query for all of them."""
    return frozenset(session.scalars(select(Role.conversation_id).join(Person, Person.id == Role.person_id).where(
        Role.role == "animator", Role.conversation_id.is_not(None), Person.active, ~Person.is_bot).distinct()))


# A person's first time in a channel (`ChannelFirst`): the database decides, with INSERT … ON
# CONFLICT DO NOTHING. What a process knows to be recorded costs no statement: a pair this
# session inserted or found there (or read, `preload`) is learned by the session, and once the
# session commits it is remembered by the process, per database (engine). Only committed pairs
# are remembered (what a rolled-back transaction or savepoint learned is forgotten with it), and
# a recorded pair never goes back to unrecorded (rows go only with their person or channel,
# whose ids PostgreSQL never gives again; a person keeps their `created_at`, which the memo
# compares, so an id SQLite gives again to someone new is not mistaken for them).
FIRSTS_MAX = 200_000  # pairs a process remembers per database (about 20 MB); more cost a statement each
FIRSTS_LOAD_MAX = 20_000  # a channel's recorded people read at once (`preload`)
_KNOWN: "weakref.WeakKeyDictionary[Any, dict[tuple[str, int, str], dict[int, datetime]]]" = weakref.WeakKeyDictionary()
_LOADED: "weakref.WeakKeyDictionary[Any, set[tuple[str, int, str]]]" = weakref.WeakKeyDictionary()
_SIZE: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_LEARNED, _READ, _LISTENING = "referents.firsts", "referents.firsts_read", "referents.firsts_listening"


def _engine(session: Session) -> Any:
    bind = session.get_bind()
    return getattr(bind, "engine", bind)  # a Connection (a session joined to another's transaction) → its engine


def _learned(session: Session) -> dict[tuple[str, int, str], dict[int, datetime]]:
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _remember)
        event.listen(session, "after_transaction_end", _forget_uncommitted)
    return memo(session, _LEARNED)  # forgotten on any rollback, a savepoint's included


def _remember(session: Session) -> None:
    """The session committed: what it learned is recorded for good. Not for a savepoint's
    release (SQLAlchemy calls this for it too), nor for a session joined to another one's
    transaction (its commit is a savepoint's): the outer transaction may still roll back."""
    learned, read = memo(session, _LEARNED), memo(session, _READ)
    if session.in_nested_transaction() or session.info.get("joined") or not (learned or read):
        return
    engine = _engine(session)
    with _LOCK:
        known, loaded = _KNOWN.setdefault(engine, {}), _LOADED.setdefault(engine, set())
        size = _SIZE.get(engine, 0)
        for key, people in learned.items():
            if size >= FIRSTS_MAX:
                break
            mine = known.setdefault(key, {})
            before = len(mine)
            mine.update(people)
            size += len(mine) - before
        _SIZE[engine] = size
        loaded.update(read)
    learned.clear()
    read.clear()


def _forget_uncommitted(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the session's transaction ended: what was not committed is unknown again
        memo(session, _LEARNED).clear()
        memo(session, _READ).clear()


def recorded(session: Session, tenant: str, conversation_id: int, person: Person, kind: str) -> bool:
    """Whether `person` doing `kind` in the channel is known to be recorded already (no
    statement: what this process remembers, and what this session learned)."""
    key = (tenant, conversation_id, kind)
    since = person.created_at
    known = _KNOWN.get(_engine(session))
    mine = known.get(key) if known is not None else None
    if mine is not None and person.id in mine and mine[person.id] == since:
        return True
    learned = _learned(session).get(key)
    return learned is not None and person.id in learned and learned[person.id] == since


def _preload(session: Session, tenant: str, conversation_id: int, kind: str) -> None:
    """Learn in one query who is recorded doing `kind` in the channel, once per process."""
    from store.models.referents import ChannelFirst

    key = (tenant, conversation_id, kind)
    read = memo(session, _READ)
    if key in read or key in _LOADED.get(_engine(session), ()):
        return
    rows = session.execute(select(ChannelFirst.person_id, Person.created_at).join(Person, Person.id == ChannelFirst.person_id)
                           .where(ChannelFirst.conversation_id == conversation_id, ChannelFirst.kind == kind)
                           .limit(FIRSTS_LOAD_MAX))
    _learned(session).setdefault(key, {}).update((person_id, since) for person_id, since in rows)
    read[key] = True


def first_time(session: Session, tenant: str, conversation_id: int, person: Person, kind: str, now: datetime, *,
               preload: bool = False) -> bool:
    """True the first time ever `person` does `kind` (joined, contributed) in the channel. The
    database decides; a pair known to be recorded already (`recorded`) is False with no
    statement. `preload`: read the channel's recorded people first, once per process (worth it
    where most people met are recorded already: every message of a channel)."""
    from store.idempotency import insert_ignore
    from store.models.referents import ChannelFirst

    if recorded(session, tenant, conversation_id, person, kind):
        return False
    if preload:
        _preload(session, tenant, conversation_id, kind)
        if recorded(session, tenant, conversation_id, person, kind):
            return False
    first = insert_ignore(session, ChannelFirst, {"tenant": tenant, "conversation_id": conversation_id, "person_id": person.id,
                                                  "kind": kind, "created_at": now})
    # Recorded now either way: by this transaction, or by one committed before it.
    _learned(session).setdefault((tenant, conversation_id, kind), {})[person.id] = person.created_at
    return first


def joined_at(session: Session, conversation_id: int, person_id: int) -> datetime | None:
    return session.scalar(select(ConversationMember.joined_at).where(ConversationMember.conversation_id == conversation_id,
                                                                     ConversationMember.person_id == person_id))


def posted_before(session: Session, conversation_id: int, person_id: int, but: str) -> bool:
    """Whether the person has an indexed message in the channel other than `but` (its external id)."""
    from store.models.social import Message

    return session.scalar(select(Message.id).where(Message.conversation_id == conversation_id, Message.author_id == person_id,
                                                   Message.external_id != but).limit(1)) is not None


def request_purpose(session: Session, conversation_id: int) -> str:
    """The purpose a channel was requested with (`request channel`), if it was."""
    from store.models.referents import SpaceRequest

    return session.scalar(select(SpaceRequest.purpose).where(SpaceRequest.conversation_id == conversation_id,
                                                             SpaceRequest.kind == "channel").limit(1)) or ""


# The audit log, read ------------------------------------------------------------------------------
def audit_entries(session: Session, since: datetime, actions: Sequence[str] = (), prefixes: Sequence[str] = (),
                  limit: int = 500) -> list[tuple[Any, str]]:
    """Audit entries since `since`, newest first, with the actor's name ("" for the bot): those
    whose action is one of `actions` or starts with one of `prefixes` (every entry when both are
    empty)."""
    from store.models.core import AuditLog

    query = select(AuditLog, Person.display_name).outerjoin(Person, Person.id == AuditLog.actor_id).where(AuditLog.created_at >= since)
    clauses = [AuditLog.action.in_(list(actions))] if actions else []
    clauses += [AuditLog.action.startswith(p) for p in prefixes]
    if clauses:
        query = query.where(or_(*clauses))
    return [(row, name or "") for row, name in session.execute(query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
                                                                .limit(limit))]


def routed_numbers(session: Session, person_id: int) -> tuple[set[int], set[int]]:
    """The numbers of the suggestions and of the requests routed to `person_id`."""
    from store.models.referents import SpaceRequest, SpaceRouting, Suggestion, SuggestionRouting

    suggestions = set(session.scalars(select(Suggestion.number).join(SuggestionRouting, SuggestionRouting.suggestion_id == Suggestion.id)
                                      .where(SuggestionRouting.person_id == person_id)))
    requests = set(session.scalars(select(SpaceRequest.number).join(SpaceRouting, SpaceRouting.request_id == SpaceRequest.id)
                                   .where(SpaceRouting.person_id == person_id)))
    return suggestions, requests
