"""The chores every messenger does against the store, written once. Sending: the language of
a message (the one locale rule, bot/locale.py), a lazy translator in it, the display names
that markers carry, the anchors of messages updated in place (PostedMessage rows), and the
steps a sending did before its visible step (`note_step`, `recall_step`: store/outbox.py).
Receiving: whether a person or a conversation's kind is known already, and the idempotency
claims that give a delivery exactly one effect (`claim`, `seen`, `RowWork`).

Synchronous store code: the Slack sender and adapter call it from worker threads, Teams
through `asyncio.to_thread`. The receiving reads go through `bot.unit.reading`, so in an
inbox batch they read in the batch's transaction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import locale as rule
from bot.context import Services
from bot.outbox import Leased
from bot.text import Names, marker_ids
from bot.unit import reading
from store import driver_sql, idempotency
from store import outbox as outbox_store
from store.idempotency import insert_ignore
from store.models.core import Conversation, Person, PostedMessage, ProcessedEvent, Workspace
from store.transient import Abandon

Translate = Callable[..., str]
ANCHOR_MAX = 200
CONVERSATION_MAX = 200
REF_MAX = 300
KEY_MAX = 300  # ProcessedEvent.key, as store.idempotency.claim cuts it
KNOWN_MAX = 200_000  # people of a workspace `known_person` reads at once (about 20 MB at most)


class Duplicate(Abandon):
    """Another worker committed the same delivery's work first: roll this attempt back."""


@dataclass
class RowWork:
    """The inbox row a worker thread is processing: the idempotency keys its work claims and
    its `finish` (mark the row done), both written by the transaction of the delivery's main
    event (`commit`, given to `Bot.handle(..., in_transaction=...)`), so a retry after a crash
    finds both committed or neither. Each messenger adds what its main event carries."""

    finish: Callable[[Session], None]
    claims: list[tuple[str, str]] = field(default_factory=list)
    outbox: Leased | None = None  # the main event's replies, recorded by the same transaction (bot/outbox.py)
    finished: bool = False

    def commit(self, session: Session) -> None:
        for tenant, key in self.claims:
            if not idempotency.claim(session, tenant, key):
                raise Duplicate(f"{key} was handled by another worker")
        self.finish(session)
        self.finished = True


class DeliveryShell:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._known_people: dict[str, frozenset[str]] = {}  # per workspace, read once (`known_person`)

    # Language ---------------------------------------------------------------
    def locale(self, tenant: str, person_id: str | None = None, conversation_id: str | None = None, *,
               private: bool) -> str:
        """The language of a message: to `person_id` privately (`private`), else posted in
        `conversation_id` for everyone there. One read transaction, only what the rule needs."""
        with self.services.db.session(tenant, readonly=True) as s:
            person = s.scalar(select(Person.locale).where(Person.external_id == person_id)) \
                if private and person_id else None
            channel = s.scalar(select(Conversation.language).where(Conversation.external_id == conversation_id)) \
                if not private and conversation_id else None
            workspace = s.scalar(select(Workspace.default_locale).where(Workspace.id == tenant))
        return rule.choose(self.services.settings.default_locale, workspace, private=private, person=person, channel=channel)

    def translator(self, tenant: str, person_id: str | None = None, conversation_id: str | None = None, *,
                   private: bool) -> Translate:
        """Prompts in the language `locale` would give, looked up on the first use only (most
        renders need no adapter string at all) and kept for the translator's life."""
        cache: dict[str, str] = {}

        def t(key: str, **params: object) -> str:
            if "locale" not in cache:
                cache["locale"] = self.locale(tenant, person_id, conversation_id, private=private)
            return self.services.prompts.t(cache["locale"], key, **params)

        return t

    # Names ------------------------------------------------------------------
    def names(self, tenant: str, texts: Sequence[str]) -> Names:
        """Display names of the people and channels that `texts` name without pinging."""
        users, channels = marker_ids(list(texts))
        if not users and not channels:
            return Names()
        with self.services.db.session(tenant, readonly=True) as s:
            people = {p.external_id: p.display_name or p.handle for p in
                      s.scalars(select(Person).where(Person.external_id.in_(users)))} if users else {}
            convs = {c.external_id: c.name for c in
                     s.scalars(select(Conversation).where(Conversation.external_id.in_(channels)))} if channels else {}
        return Names({k: v for k, v in people.items() if v}, {k: v for k, v in convs.items() if v})

    # Anchors ----------------------------------------------------------------
    def anchor(self, tenant: str, anchor: str, conversation: str) -> str | None:
        """What `remember_anchor` stored for `anchor` posted to `conversation`: the platform's
        reference of the message to update in place, or None when it was never posted."""
        with self.services.db.session(tenant, readonly=True) as s:
            return s.scalar(select(PostedMessage.message_ref).where(
                PostedMessage.anchor == anchor[:ANCHOR_MAX],
                PostedMessage.conversation_external_id == conversation[:CONVERSATION_MAX]))

    def remember_anchor(self, tenant: str, anchor: str, conversation: str, ref: str) -> None:
        """Keep (or move) the message `anchor` now stands for in `conversation`."""
        values = {"anchor": anchor[:ANCHOR_MAX], "conversation_external_id": conversation[:CONVERSATION_MAX],
                  "message_ref": ref[:REF_MAX], "updated_at": self.services.clock.now()}
        with self.services.db.session(tenant) as s:
            if not insert_ignore(s, PostedMessage, {"tenant": tenant, **values}):
                s.execute(update(PostedMessage).where(
                    PostedMessage.tenant == tenant, PostedMessage.anchor == values["anchor"],
                    PostedMessage.conversation_external_id == values["conversation_external_id"])
                    .values(message_ref=values["message_ref"], updated_at=values["updated_at"]))

    # Delivery steps -----------------------------------------------------------
    def note_step(self, key: str, step: str, value: Mapping[str, Any]) -> None:
        """Remember, committed now, that the sending of delivery `key` did `step` (`value`: what a
        retry needs to finish it). Called before the visible step that may go unanswered."""
        outbox_store.note_step(self.services.db, key, step, json.dumps(dict(value), ensure_ascii=False), self.services.clock.now())

    def recall_step(self, key: str, step: str, since: datetime | None) -> tuple[dict[str, Any], datetime] | None:
        """What `note_step` kept for `key`'s `step` (and when), unless older than `since`."""
        found = outbox_store.recall_step(self.services.db, key, step, since)
        if found is None:
            return None
        try:
            value = json.loads(found[0])
        except ValueError:
            return None
        return (value, found[1]) if isinstance(value, dict) else None

    # Receiving --------------------------------------------------------------
    def known_person(self, tenant: str, person_id: str) -> bool:
        """Whether the store has `person_id` already (on a first sight the messenger asks the
        platform for their profile). Asked for every message a process has not seen the sender
        of: the workspace's people are read once per process, in one query of committed rows
        (a person's row is never taken back once written, except by an erasure, which the
        messengers' own memory of whom they saw ignores as well), and only someone stored since
        is looked up on their own (a driver-level read in the event's transaction)."""
        known = self._known_people.get(tenant)
        if known is None:
            known = self._load_known(tenant)
        if person_id in known:
            return True
        with reading(self.services.db, tenant) as s:
            return bool(driver_sql.fetch(s, "SELECT 1 FROM people WHERE tenant = ? AND external_id = ?",
                                         [tenant, person_id]))

    def _load_known(self, tenant: str) -> frozenset[str]:
        """The platform ids of `tenant`'s stored people (at most KNOWN_MAX), committed ones only
        (a read of its own: an inbox batch's uncommitted first sights could still be undone)."""
        with self.services.db.session(tenant, readonly=True) as s:
            ids = frozenset(row[0] for row in driver_sql.fetch(
                s, f"SELECT external_id FROM people WHERE tenant = ? LIMIT {KNOWN_MAX}", [tenant]))
        self._known_people[tenant] = ids
        return ids

    def stored_kind(self, tenant: str, conversation_id: str) -> str | None:
        """The kind stored for `conversation_id`, None when it was never stored."""
        with reading(self.services.db, tenant) as s:
            return s.scalar(select(Conversation.kind).where(Conversation.external_id == conversation_id))

    def seen(self, tenant: str, key: str) -> bool:
        """`key`'s claim is committed: the work it stands for was done (a read, which never
        waits for a writer)."""
        with reading(self.services.db, tenant) as s:
            return s.scalar(select(ProcessedEvent.id).where(ProcessedEvent.key == key[:KEY_MAX])) is not None

    def claim(self, tenant: str, key: str, work: RowWork | None = None, *, check: bool = True) -> bool:
        """True the first time `key` is claimed. Without `work`, the claim is committed now, in a
        transaction of its own, before the work. For an inbox row's `work` it is only checked
        (`check=False`: not even, where a duplicate is too rare for the read to be worth it) and
        written by the row's main event's transaction (`RowWork.commit`), which a duplicate
        rolls back."""
        if work is None:
            with self.services.db.session(tenant) as s:
                return idempotency.claim(s, tenant, key)
        if check and self.seen(tenant, key):
            return False
        work.claims.append((tenant, key))
        return True
