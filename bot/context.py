"""What a handler gets: the store session, prompts in the actor's language, the clock,
and the toolkit every feature shares, so that no handler reaches into the dispatcher:
answering the message being handled, translating for someone else's language, reading
numbered arguments, writing the audit log, and (in a job) acting as someone."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence
from zoneinfo import ZoneInfo

from babel.lists import format_list
from sqlalchemy.orm import Session

from bot import locale as locale_rule
from bot.text import MARK_CLOSE, MARK_OPEN, link_marker, ping_marker, split_markers, strip_markers
from bot.types import Card, ConversationRef, Effect, Form, IncomingMessage, Outbound, Picture, Reply, UserRef
from store import audit as audit_store
from store import people as people_store
from store.models.core import Conversation, Person, Workspace

if TYPE_CHECKING:
    from handlers.expertise.lookup import PersonCard
    from bot.clock import Clock
    from bot.config import Settings
    from bot.i18n import Prompts
    from bot.registry import Registry
    from store.db import Database

_PERSON_TOKEN = re.compile(MARK_OPEN + r"@([^" + MARK_CLOSE + r"]+)" + MARK_CLOSE + r"|@([\w.\-]+)")
_CHANNEL_TOKEN = re.compile(MARK_OPEN + r"#([^" + MARK_CLOSE + r"]+)" + MARK_CLOSE + r"|#([\w\-]+)")
_LEADING_NUMBER = re.compile(r"^#?(\d{1,9})\b")


class Translate(Protocol):
    """A prompt looked up in one fixed language: `tr("idea.card", id=3)`."""

    def __call__(self, key: str, /, **params: object) -> str: ...


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


def person_locale(settings: "Settings", workspace: Workspace, person: Person) -> str:
    """The language to write to `person` in (the one locale rule, bot/locale.py)."""
    return locale_rule.for_person(settings.default_locale, workspace, person)


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

    @classmethod
    def for_person(cls, services: "Services", session: Session, workspace: Workspace, person: Person,
                   conversation: Conversation | None = None) -> "Ctx":
        """A context acting as `person`, in their own language, with no message to answer
        (jobs use `JobCtx.acting_as`; tests and benchmarks call this directly)."""
        locale = person_locale(services.settings, workspace, person)
        return cls(services, session, workspace, person, conversation, None, locale, workspace.platform)

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

    # Other people's languages ---------------------------------------------
    def t_for(self, person: Person, key: str, **params: object) -> str:
        """A prompt in `person`'s language (a DM, a notification's parameters)."""
        return self.t_in(self.locale_of(person), key, **params)

    def t_in(self, locale: str, key: str, **params: object) -> str:
        """A prompt in `locale`, whoever the actor is (a card posted in a channel)."""
        return self.services.prompts.t(locale, key, **params)

    def translator(self, locale: str) -> Translate:
        """`t_in` bound to `locale`: for building a whole card in someone else's language."""
        return partial(self.services.prompts.t, locale)

    def locale_of(self, person: Person) -> str:
        return person_locale(self.settings, self.workspace, person)

    def locale_in(self, conversation: Conversation | None) -> str:
        """The language of what everyone in `conversation` reads: the channel's, else the
        workspace's; in a DM (or without a conversation), the actor's."""
        if conversation is None or conversation.kind == "dm":
            return self.locale
        return locale_rule.for_channel(self.settings.default_locale, self.workspace, conversation)

    def reply(
        self,
        key: str,
        *,
        card: Card | None = None,
        private: bool = False,
        in_thread: bool = False,
        form: Form | None = None,
        attachment: tuple[str, bytes] | None = None,
        picture: Picture | None = None,
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
            picture=picture,
        )

    def answer(self, reply: Reply, *, anchor: str | None = None) -> Outbound:
        """`reply` as the answer to the message being handled, which is what a handler's
        returned `Reply` becomes; build it yourself to return it among other effects. It goes
        to the message's conversation and thread (a new thread under the message when
        `reply.in_thread`), only to the sender when `reply.private` (outside a DM).
        `anchor` makes a later send with the same anchor update it in place."""
        msg = self.msg
        if msg is None:
            raise RuntimeError("nothing to answer: this context has no message (a job or a non-message hook)")
        thread = msg.thread_id or msg.conversation.thread_id
        if reply.in_thread and not thread:
            thread = msg.id
        private_for = msg.sender if reply.private and msg.conversation.kind != "dm" else None
        return Outbound(reply=reply, to=msg.conversation, private_for=private_for, thread_id=thread, anchor=anchor)

    def audit(self, action: str, detail: str = "") -> None:
        """Record in the audit log that the actor did `action` now. Written in the command's
        transaction: a command refused after this line leaves no entry."""
        audit_store.record(self.session, action, detail, actor_id=self.actor.id, at=self.now())

    # Arguments -------------------------------------------------------------
    @staticmethod
    def numbered(args: str) -> tuple[int | None, str]:
        """The number `args` starts with (`12` or `#12`: "idea vote 12", "ask resolve #3 done")
        and the rest, stripped; `(None, args stripped)` when it starts with no number."""
        text = args.strip()
        m = _LEADING_NUMBER.match(text)
        if not m:
            return None, text
        return int(m.group(1)), text[m.end():].strip()

    @staticmethod
    def number_in(token: str, low: int, high: int) -> int | None:
        """`token` as a whole number from `low` to `high` ("feed 2"), else None."""
        if not token.isdecimal():
            return None
        value = int(token)
        return value if low <= value <= high else None

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
        """Raise a refusal that names the action (the prompt `action_key`), the roles that may
        do it ("référents or animators") and who holds them, each with their own role."""
        if self.has_role(roles, conversation):
            return
        labelled: dict[str, str] = {}
        for role in roles:  # a person holding two of these roles is named once, with the first
            for person in people_store.role_holders(self.session, (role,), conversation):
                labelled.setdefault(self.name(person), self.t(f"role.one.{role}"))
        for admin in self.settings.admins:
            labelled.setdefault(admin, self.t("role.one.admin"))
        who = [self.t("error.person_role", name=name, role=role) for name, role in list(labelled.items())[:8]]
        raise UserError(
            "error.not_allowed",
            action=self.t(action_key),
            roles=format_list([self.t(f"role.{r}") for r in dict.fromkeys((*roles, "admin"))], style="or", locale=self.locale),
            who=", ".join(who) or self.t("error.no_one"),
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
    """What a periodic job gets: a session over all workspaces and the clock's time. A job
    opens a per-tenant session (`services.db.session(tenant)`) for its writes, and
    `acting_as(...)` there when it needs a handler's toolkit on someone's behalf."""

    services: "Services"
    session: Session
    now: datetime

    def t(self, locale: str | None, key: str, **params: object) -> str:
        return self.services.prompts.t(locale, key, **params)

    def acting_as(self, session: Session, workspace: Workspace, person: Person,
                  conversation: Conversation | None = None) -> Ctx:
        """A handler's context in `session` (one workspace's), acting as `person` in their
        own language: to reuse a feature's rendering and `notify` from a job."""
        return Ctx.for_person(self.services, session, workspace, person, conversation)

    def audit(self, session: Session, action: str, detail: str = "") -> None:
        """Record in `session`'s workspace that the bot itself did `action` (no actor)."""
        audit_store.record(session, action, detail, actor_id=None, at=self.now)


EffectList = list[Effect]
