"""The chores every messenger's delivery does against the store, written once: the language
of a message (the one locale rule, bot/locale.py), a lazy translator in it, the display names
that markers carry, and the anchors of messages updated in place (PostedMessage rows).

Synchronous store code: the Slack sender calls it from worker threads, Teams through
`asyncio.to_thread`.
"""
from __future__ import annotations

from typing import Callable, Sequence

from sqlalchemy import select, update

from bot import locale as rule
from bot.context import Services
from bot.text import Names, marker_ids
from store.idempotency import insert_ignore
from store.models.core import Conversation, Person, PostedMessage, Workspace

Translate = Callable[..., str]
ANCHOR_MAX = 200
CONVERSATION_MAX = 200
REF_MAX = 300


class DeliveryShell:
    def __init__(self, services: Services) -> None:
        self.services = services

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
