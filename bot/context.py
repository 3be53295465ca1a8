"""What a handler gets: the store session, prompts in the actor's language, the clock,
and small helpers to resolve people and channels and to build replies."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.text import MARK_CLOSE, MARK_OPEN, link_marker, ping_marker, split_markers, strip_markers
from bot.types import Card, ConversationRef, Effect, Form, IncomingMessage, Outbound, Reply, UserRef
from store import people as people_store
from store.models.core import Conversation, Person, Workspace

if TYPE_CHECKING:
    from bot.expertise import PersonCard
    from bot.clock import Clock
    from bot.config import Settings
    from bot.i18n import Prompts
    from bot.registry import Registry
    from store.db import Database

_PERSON_TOKEN = re.compile(MARK_OPEN + r"@([^" + MARK_CLOSE + r"]+)" + MARK_CLOSE + r"|@([\w.\-]+)")
_CHANNEL_TOKEN = re.compile(MARK_OPEN + r"#([^" + MARK_CLOSE + r"]+)" + MARK_CLOSE + r"|#([\w\-]+)")


class UserError(Exception):
    """A refusal or validation failure shown to the user; the command's writes are undone."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass
class Services:
    """Long-lived things built once in app.py and shared by every event."""

    settings: "Settings"
    db: "Database"
    prompts: "Prompts"
    clock: "Clock"
    registry: "Registry"
    extras: dict[str, Any] = field(default_factory=dict)
    # Set by the running adapter: sends effects now (jobs that record each delivery use it).
    deliver: Callable[[Sequence[Effect]], None] | None = None


def is_admin(settings: "Settings", person: Person) -> bool:
    ids = {a.casefold() for a in settings.admins}
    return bool(ids & {person.external_id.casefold(), person.handle.casefold(), person.email.casefold()} - {""})


@dataclass
class Ctx:
    services: "Services"
    session: Session
    workspace: Workspace
    actor: Person
    conversation: Conversation | None
    msg: IncomingMessage | None
    locale: str
    platform: str

    @property
    def settings(self) -> "Settings":
        return self.services.settings

    @property
    def tenant(self) -> str:
        return self.workspace.id

    def now(self) -> datetime:
        return self.services.clock.now()

    def tz(self) -> ZoneInfo:
        return zone(self.actor.tz)

    def t(self, key: str, **params: object) -> str:
        return self.services.prompts.t(self.locale, key, **params)

    def t_for(self, person: Person, key: str, **params: object) -> str:
        return self.services.prompts.t(self.locale_of(person), key, **params)

    def locale_of(self, person: Person) -> str:
        return person.locale or self.workspace.default_locale or self.settings.default_locale

    def reply(
        self,
        key: str,
        *,
        card: Card | None = None,
        private: bool = False,
        in_thread: bool = False,
        form: Form | None = None,
        attachment: tuple[str, bytes] | None = None,
        **params: object,
    ) -> Reply:
        return Reply(
            text=self.t(key, **params),
            card=card,
            key=key,
            params=dict(params),
            private=private,
            in_thread=in_thread,
            form=form,
            attachment=attachment,
        )

    # People and channels -------------------------------------------------
    def mention(self, person: "Person | PersonCard") -> str:
        """A real ping, only where the person accepts mentions; else their name."""
        return ping_marker(person.external_id) if person.accepts_mentions else self.name(person)

    @staticmethod
    def name(person: "Person | PersonCard") -> str:
        return person.display_name or person.handle or person.external_id

    def plain(self, text: str) -> str:
        """`text` with every marker replaced by a name: for echoing user input without pinging."""
        names: dict[str, str] = {}
        for kind, value in split_markers(text):
            if kind == "user":
                person = people_store.find_person(self.session, value)
                names[value] = self.name(person) if person else value
            elif kind == "channel":
                conv = people_store.find_conversation(self.session, value)
                names[value] = conv.name if conv else value
        return strip_markers(text, names)

    def channel_link(self, conversation: Conversation) -> str:
        return link_marker(conversation.external_id)

    @property
    def is_admin(self) -> bool:
        return is_admin(self.settings, self.actor)

    def has_role(self, roles: Sequence[str], conversation: Conversation | None) -> bool:
        return self.is_admin or people_store.has_role(self.session, self.actor, roles, conversation)

    def require_role(self, roles: Sequence[str], conversation: Conversation | None, action_key: str) -> None:
        """Raise a refusal that names who can do it (admins and the role holders)."""
        if self.has_role(roles, conversation):
            return
        holders = people_store.role_holders(self.session, roles, conversation)
        names = [self.name(p) for p in holders]
        names += [a for a in self.settings.admins if a not in names]
        raise UserError(
            "error.not_allowed",
            action=self.t(action_key),
            roles=", ".join(self.t(f"role.{r}") for r in roles),
            who=", ".join(names[:8]) or self.t("error.no_one"),
        )

    def find_people(self, text: str) -> tuple[list[Person], list[str]]:
        """People named in `text` (mention markers or @handles) and the tokens not found."""
        found: list[Person] = []
        missing: list[str] = []
        for m in _PERSON_TOKEN.finditer(text):
            token = m.group(1) or m.group(2)
            person = people_store.find_person(self.session, token)
            if person is None:
                missing.append("@" + token)
            elif person not in found:
                found.append(person)
        return found, missing

    def find_channel(self, text: str) -> Conversation | None:
        for m in _CHANNEL_TOKEN.finditer(text):
            conv = people_store.find_conversation(self.session, m.group(1) or m.group(2))
            if conv is not None:
                return conv
        return None

    def ref_of(self, conversation: Conversation, thread_id: str | None = None) -> ConversationRef:
        return ConversationRef(
            platform=self.platform,
            tenant=self.tenant,
            id=conversation.external_id,
            kind=conversation.kind,  # type: ignore[arg-type]
            thread_id=thread_id,
            name=conversation.name,
        )

    def user_ref(self, person: Person) -> UserRef:
        return UserRef(self.platform, self.tenant, person.external_id, self.name(person))

    def dm(self, person: Person, key: str, *, card: Card | None = None, **params: object) -> Outbound:
        """A direct message to `person`, written in their own language."""
        reply = Reply(text=self.t_for(person, key, **params), card=card, key=key, params=dict(params))
        return Outbound(reply=reply, to=self.user_ref(person))


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (KeyError, ValueError, OSError):
        return ZoneInfo("UTC")


@dataclass
class JobCtx:
    """What a periodic job gets: a session over all workspaces and the clock's time."""

    services: "Services"
    session: Session
    now: datetime

    def t(self, locale: str | None, key: str, **params: object) -> str:
        return self.services.prompts.t(locale, key, **params)


EffectList = list[Effect]
