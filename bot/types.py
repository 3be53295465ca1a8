"""Neutral events, replies and effects shared by the core and every adapter.

Handlers only ever see these types: never `<@U123>`, `<at>…</at>` or a platform
client. Adapters translate native payloads into events and render replies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Mapping, Union

ConversationKind = Literal["dm", "public", "private", "group"]


@dataclass(frozen=True)
class UserRef:
    """A person as a platform knows them. `id` is the platform's user id."""

    platform: str
    tenant: str
    id: str
    display_name: str = ""
    is_bot: bool = False


@dataclass(frozen=True)
class ConversationRef:
    """A channel, group chat or DM. `thread_id` points replies into a thread."""

    platform: str
    tenant: str
    id: str
    kind: ConversationKind = "public"
    thread_id: str | None = None
    name: str = ""


@dataclass(frozen=True)
class IncomingMessage:
    """A message the bot saw. `addressed` is True for slash commands, @bot, DMs and clicks."""

    id: str
    text: str
    sender: UserRef
    conversation: ConversationRef
    addressed: bool
    mentions: tuple[UserRef, ...] = ()
    hashtags: tuple[str, ...] = ()
    locale: str | None = None
    channels: tuple[str, ...] = ()  # platform ids of the channel markers the adapter put in `text`
    sent_at: datetime | None = None
    permalink: str = ""
    thread_id: str | None = None
    form_values: Mapping[str, str] | None = None
    backfill: bool = False
    source_text: str = ""        # message shortcuts: the message the shortcut was used on
    source_permalink: str = ""
    source_id: str | None = None
    via: Literal["message", "command", "mention", "button", "form", "shortcut"] = "message"
    # Where in `text` the bot's own mention stood before its adapter removed it (None: not
    # mentioned): `bot.addressing.command_text` looks for the command after it, then before it.
    bot_mention_at: int | None = None


@dataclass(frozen=True)
class MessageEdited:
    id: str
    text: str
    sender: UserRef
    conversation: ConversationRef
    mentions: tuple[UserRef, ...] = ()
    hashtags: tuple[str, ...] = ()
    edited_at: datetime | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageDeleted:
    id: str
    conversation: ConversationRef
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class ReactionAdded:
    message_id: str
    conversation: ConversationRef
    user: UserRef
    reaction: str
    removed: bool = False


@dataclass(frozen=True)
class MembersChanged:
    """People joined or left a conversation (the bot itself included: `bot_joined`)."""

    conversation: ConversationRef
    joined: tuple[UserRef, ...] = ()
    left: tuple[UserRef, ...] = ()
    bot_joined: bool = False
    bot_left: bool = False


@dataclass(frozen=True)
class ProfileUpdate:
    """Profile facts a platform told us (users.info, user_change, Teams roster)."""

    user: UserRef
    real_name: str | None = None
    title: str | None = None
    email: str | None = None
    tz: str | None = None
    avatar_url: str | None = None
    locale: str | None = None
    deactivated: bool | None = None


@dataclass(frozen=True)
class MessageRead:
    """`user` has read `conversation` up to the message `message_id` (a read receipt, where the
    platform tells a bot: Matrix's public `m.read`; never a private receipt)."""

    message_id: str
    conversation: ConversationRef
    user: UserRef
    read_at: datetime | None = None


Event = Union[IncomingMessage, MessageEdited, MessageDeleted, ReactionAdded, MembersChanged, ProfileUpdate, MessageRead]


@dataclass(frozen=True)
class Action:
    """A button. Clicking it is the same as typing `command`."""

    label: str
    command: str
    style: Literal["default", "primary", "danger"] = "default"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Literal["text", "multiline", "checkbox", "select"] = "text"
    value: str = ""
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for selects
    max_length: int = 2000


@dataclass(frozen=True)
class Form:
    """A modal (Slack), an Adaptive Card form (Teams) or a typed fallback (console).

    On submit the adapter sends an addressed IncomingMessage whose text is
    `submit_command` and whose `form_values` hold the fields.
    """

    title: str
    submit_command: str
    fields: tuple[FormField, ...]
    submit_label: str = "OK"


@dataclass(frozen=True)
class Card:
    title: str
    body: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    actions: tuple[Action, ...] = ()
    footer: str = ""
    sections: tuple[tuple[str, str], ...] = ()  # (heading, markdown-ish body)


@dataclass(frozen=True)
class Picture:
    """An image shown with a reply, e.g. a chart (`bot.charts.render_trend`).

    `png` is the PNG file; `alt` the text read aloud or shown where images are not (in the
    reader's language, like the reply); `filename` what a saved or downloaded copy is called.
    Slack uploads it (alt text attached; a private reply's picture goes to the person's DM),
    Teams shows it in an Adaptive Card Image, the console saves it and prints its path.
    """

    png: bytes
    alt: str
    filename: str = "chart.png"


@dataclass(frozen=True)
class Reply:
    """What a handler answers. `text` is always set (fallback and notification text).

    Text may contain mention markers made by `bot.text.mention_marker`; adapters turn
    them into real pings and escape everything else.
    """

    text: str
    card: Card | None = None
    key: str = ""
    params: Mapping[str, object] = field(default_factory=dict)
    private: bool = False
    in_thread: bool = False
    form: Form | None = None
    attachment: tuple[str, bytes] | None = None  # (filename, content), e.g. a data export
    picture: Picture | None = None  # an image shown with the text (a chart)


@dataclass(frozen=True)
class Outbound:
    """A reply on its way to a conversation or to a person's DM.

    `private_for`: show only to that person in `to` (Slack ephemeral; Teams degrades
    to a DM plus a short public acknowledgement). `anchor`: a stable key such as
    "idea:42": sending again with the same anchor updates the earlier message in place.
    """

    reply: Reply
    to: ConversationRef | UserRef
    private_for: UserRef | None = None
    thread_id: str | None = None
    anchor: str | None = None
    response_url: str | None = None


@dataclass(frozen=True)
class FetchHistory:
    """Ask the adapter to import a conversation's recent history as backfill messages."""

    conversation: ConversationRef
    since: datetime
    requested_by: UserRef | None = None
    progress_anchor: str | None = None


@dataclass(frozen=True)
class SpaceChange:
    """Create a channel (`action` "create": `channel.name` and `channel.kind`, public or
    private; its id is not known yet) or add `people` to one (`action` "invite"), where the
    platform lets a bot do it. The platform's member-joined event (or the `MembersChanged` the
    adapter hands the core after doing it) tells the feature it is done. Where the platform
    refuses, the adapter writes prompt `failed_key` (with `error`, the platform's code, and
    `params`) to `report_to` in their language; where a bot cannot do it at all, `manual_key`
    (with `params`): what to click instead."""

    action: Literal["create", "invite"]
    channel: ConversationRef
    people: tuple[UserRef, ...] = ()
    purpose: str = ""
    report_to: UserRef | None = None
    failed_key: str = ""
    manual_key: str = ""
    params: Mapping[str, object] = field(default_factory=dict)


Effect = Union[Outbound, FetchHistory, SpaceChange]


def effect_target(effect: "Effect") -> ConversationRef | UserRef | None:
    """Where an effect goes (its platform and workspace): for routing it to its messenger."""
    if isinstance(effect, Outbound):
        return effect.to
    if isinstance(effect, FetchHistory):
        return effect.conversation
    if isinstance(effect, SpaceChange):
        return effect.channel
    return None
