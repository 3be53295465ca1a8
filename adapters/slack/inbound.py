"""Slack payloads → neutral events. Pure functions: no Bolt, no network, no database.

Slack text arrives escaped (`&amp;`, `&lt;`, `&gt;`) with its own tokens: `<@U123|name>`,
`<#C123|name>`, `<https://x|label>`, `<!here>`. Mentions and channels become the core's
markers; links and broadcasts become plain text; the rest is unescaped.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from bot.text import channel_marker, mention_marker
from bot.types import (
    ConversationKind,
    ConversationRef,
    IncomingMessage,
    MembersChanged,
    MessageDeleted,
    MessageEdited,
    ProfileUpdate,
    ReactionAdded,
    UserRef,
)

PLATFORM = "slack"
_TOKEN = re.compile(r"<([^<>]*)>")
# Message subtypes that are still a person speaking; every other subtype is ignored.
HUMAN_SUBTYPES = frozenset({"", "thread_broadcast", "file_share", "me_message"})

Payload = Mapping[str, Any]


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class ParsedText:
    text: str
    mentions: tuple[UserRef, ...]
    stripped_at: int | None = None  # where the first mention of `strip_user` stood in `text`
    channels: tuple[str, ...] = ()  # the channels named with a channel marker


def parse_text(raw: str, tenant: str, *, strip_user: str | None = None) -> ParsedText:
    """Slack mrkdwn → core text with markers. `strip_user` (the bot) is removed wherever it
    is, not kept; `stripped_at` says where its first mention stood."""
    out: list[str] = []
    mentions: list[UserRef] = []
    channels: list[str] = []
    stripped_at: int | None = None
    pos = 0
    for m in _TOKEN.finditer(raw or ""):
        out.append(unescape(raw[pos : m.start()]))
        pos = m.end()
        inner = m.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            uid = target[1:]
            if uid == strip_user:
                if stripped_at is None:
                    stripped_at = sum(len(part) for part in out)
                continue
            if uid and uid not in {u.id for u in mentions}:
                mentions.append(UserRef(PLATFORM, tenant, uid, unescape(label)))
            out.append(mention_marker(uid) if uid else "")
        elif target.startswith("#"):
            if target[1:] and target[1:] not in channels:
                channels.append(target[1:])
            out.append(channel_marker(target[1:]) if target[1:] else "")
        elif target.startswith("!"):
            word = target[1:].split("^")[0]
            out.append(unescape(label) if label else "@" + word)
        else:
            url = unescape(target)
            text = unescape(label)
            if not text or text == url or url.removeprefix("mailto:") == text:
                out.append(text or url)
            else:
                out.append(f"{text} ({url})")
    out.append(unescape((raw or "")[pos:]))
    return ParsedText("".join(out), tuple(mentions), stripped_at, tuple(channels))


def ts_to_datetime(ts: str | float | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), tz=timezone.utc) if ts not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def kind_from(channel_id: str, channel_type: str | None = None, channel_name: str | None = None) -> ConversationKind | None:
    """The conversation kind a payload states with authority, or None when it does not say.

    Events API messages carry `channel_type`; `D…` ids are always DMs; `G…` ids and the
    legacy "privategroup"/"mpdm-" names are never public. A `C…` id proves nothing: private
    channels have them too, so "public" is only ever what Slack itself said.
    """
    if channel_type == "im" or channel_name == "directmessage" or channel_id.startswith("D"):
        return "dm"
    if channel_type == "mpim" or (channel_name or "").startswith("mpdm-"):
        return "group"
    if channel_type in ("group", "G", "private_channel") or channel_name == "privategroup" or channel_id.startswith("G"):
        return "private"
    if channel_type in ("channel", "public_channel"):
        return "public"
    return None


def kind_of_info(info: Payload) -> ConversationKind:
    """`conversations.info`'s channel → kind; public only when Slack says `is_private: false`."""
    if info.get("is_im"):
        return "dm"
    if info.get("is_mpim"):
        return "group"
    return "public" if info.get("is_private") is False and info.get("id") else "private"


def replay_key(kind: str, body: Payload) -> str:
    """What makes a signed command or interaction unique, so a replay of it is recognised.

    Slack gives every invocation its own `trigger_id`; a view submission without one is
    known by its view id and state hash; anything else by a digest of the whole payload.
    """
    trigger = body.get("trigger_id")
    if trigger:
        return f"slack:{kind}:{body.get('callback_id') or ''}:{trigger}"
    view = body.get("view")
    if isinstance(view, Mapping) and view.get("id") and view.get("hash"):
        return f"slack:{kind}:{view['id']}:{view['hash']}"
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f"slack:{kind}:sha256:{digest}"


def conversation(tenant: str, channel_id: str, kind: ConversationKind, name: str = "") -> ConversationRef:
    return ConversationRef(PLATFORM, tenant, channel_id, kind, name=name if name not in ("directmessage", "privategroup") else "")


def team_of(body: Payload) -> str:
    """The tenant: the workspace (team) id, wherever this payload type keeps it."""
    team = body.get("team_id") or body.get("team")
    if isinstance(team, Mapping):
        team = team.get("id")
    if not team:
        user = body.get("user")
        if isinstance(user, Mapping):
            team = user.get("team_id")
    if not team:
        auths = body.get("authorizations") or [{}]
        team = auths[0].get("team_id") if isinstance(auths[0], Mapping) else None
    return str(team or "")


# Slash command ------------------------------------------------------------------
def slash_command(body: Payload) -> IncomingMessage:
    tenant = team_of(body)
    channel_id = str(body.get("channel_id", ""))
    kind = kind_from(channel_id, channel_name=body.get("channel_name")) or "private"
    parsed = parse_text(str(body.get("text", "")), tenant)
    sender = UserRef(PLATFORM, tenant, str(body.get("user_id", "")), str(body.get("user_name", "")))
    return IncomingMessage(
        id=f"cmd-{body.get('trigger_id', '')}",
        text=parsed.text,
        sender=sender,
        conversation=conversation(tenant, channel_id, kind, str(body.get("channel_name", ""))),
        addressed=True,
        mentions=parsed.mentions,
        channels=parsed.channels,
        via="command",
    )


# Events API ---------------------------------------------------------------------
def is_from_bot(event: Payload, bot_user_id: str | None) -> bool:
    return bool(
        event.get("bot_id")
        or event.get("subtype") == "bot_message"
        or (bot_user_id and event.get("user") == bot_user_id)
    )


def message_event(event: Payload, tenant: str, bot_user_id: str | None, *, mention: bool = False) -> IncomingMessage | None:
    """`message` (ambient, or addressed in a DM) and `app_mention` (addressed).

    The conversation's kind is what `channel_type` says, else "private" until the adapter
    has asked Slack (app_mention carries no channel_type)."""
    if is_from_bot(event, bot_user_id) or str(event.get("subtype") or "") not in HUMAN_SUBTYPES:
        return None
    user = event.get("user")
    channel_id = str(event.get("channel", ""))
    ts = str(event.get("ts", ""))
    if not user or not channel_id or not ts:
        return None
    kind = kind_from(channel_id, event.get("channel_type")) or "private"
    addressed = mention or kind == "dm"
    parsed = parse_text(str(event.get("text", "")), tenant, strip_user=bot_user_id if addressed else None)
    text, mention_at = parsed.text, parsed.stripped_at
    if addressed:
        text = parsed.text.strip()
        if mention_at is not None:
            lead = len(parsed.text) - len(parsed.text.lstrip())
            mention_at = min(max(0, mention_at - lead), len(text))
    thread_ts = event.get("thread_ts")
    return IncomingMessage(
        id=ts,
        text=text,
        sender=UserRef(PLATFORM, tenant, str(user)),
        conversation=conversation(tenant, channel_id, kind),
        addressed=addressed,
        mentions=parsed.mentions,
        channels=parsed.channels,
        sent_at=ts_to_datetime(ts),
        thread_id=str(thread_ts) if thread_ts and thread_ts != ts else None,
        via="mention" if mention else "message",
        bot_mention_at=mention_at,
    )


def mentions_bot(event: Payload, bot_user_id: str | None) -> bool:
    return bool(bot_user_id) and f"<@{bot_user_id}" in str(event.get("text", ""))


def edited_event(event: Payload, tenant: str, bot_user_id: str | None) -> MessageEdited | None:
    new = event.get("message") or {}
    if not isinstance(new, Mapping) or is_from_bot(new, bot_user_id) or not new.get("user") or not new.get("ts"):
        return None
    previous = event.get("previous_message") or {}
    if isinstance(previous, Mapping) and previous.get("text") == new.get("text"):
        return None  # unfurls and reply counts also send message_changed
    channel_id = str(event.get("channel", ""))
    parsed = parse_text(str(new.get("text", "")), tenant, strip_user=bot_user_id)
    edited = new.get("edited") or {}
    return MessageEdited(
        id=str(new["ts"]),
        text=parsed.text,
        sender=UserRef(PLATFORM, tenant, str(new["user"])),
        conversation=conversation(tenant, channel_id, kind_from(channel_id, event.get("channel_type")) or "private"),
        mentions=parsed.mentions,
        channels=parsed.channels,
        edited_at=ts_to_datetime(edited.get("ts") if isinstance(edited, Mapping) else None) or ts_to_datetime(event.get("event_ts")),
    )


def deleted_event(event: Payload, tenant: str) -> MessageDeleted | None:
    deleted = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
    channel_id = str(event.get("channel", ""))
    if not deleted or not channel_id:
        return None
    return MessageDeleted(
        id=str(deleted),
        conversation=conversation(tenant, channel_id, kind_from(channel_id, event.get("channel_type")) or "private"),
        deleted_at=ts_to_datetime(event.get("event_ts")),
    )


def reaction_event(event: Payload, tenant: str, *, removed: bool) -> ReactionAdded | None:
    item = event.get("item") or {}
    if not isinstance(item, Mapping) or item.get("type") != "message" or not event.get("user"):
        return None
    channel_id = str(item.get("channel", ""))
    return ReactionAdded(
        message_id=str(item.get("ts", "")),
        conversation=conversation(tenant, channel_id, kind_from(channel_id) or "private"),
        user=UserRef(PLATFORM, tenant, str(event["user"])),
        reaction=str(event.get("reaction", "")),
        removed=removed,
    )


def members_event(event: Payload, tenant: str, bot_user_id: str | None, *, left: bool) -> MembersChanged | None:
    user, channel_id = event.get("user"), str(event.get("channel", ""))
    if not user or not channel_id:
        return None
    kind = kind_from(channel_id, event.get("channel_type")) or "private"
    conv = conversation(tenant, channel_id, kind)
    is_bot = bool(bot_user_id) and user == bot_user_id
    ref = UserRef(PLATFORM, tenant, str(user), is_bot=is_bot)
    if left:
        return MembersChanged(conv, left=(ref,), bot_left=is_bot)
    return MembersChanged(conv, joined=(ref,), bot_joined=is_bot)


def profile_update(user: Payload, tenant: str) -> ProfileUpdate | None:
    """`users.info`'s and `user_change`'s user object."""
    uid = user.get("id")
    if not uid:
        return None
    profile = user.get("profile") or {}
    real_name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
    locale = str(user.get("locale") or "")[:2] or None
    return ProfileUpdate(
        user=UserRef(PLATFORM, tenant, str(uid), str(real_name or ""), is_bot=bool(user.get("is_bot"))),
        real_name=profile.get("real_name") or user.get("real_name") or None,
        title=profile.get("title"),
        email=profile.get("email"),
        tz=user.get("tz"),
        avatar_url=profile.get("image_192") or profile.get("image_72"),
        locale=locale if locale in ("en", "fr") else None,
        deactivated=bool(user.get("deleted")),
    )


# Interactivity ------------------------------------------------------------------
def interaction_kind(body: Payload) -> ConversationKind | None:
    """What a click, shortcut or modal payload states about its conversation (see `kind_from`)."""
    channel = body.get("channel") or {}
    channel_id = str(channel.get("id", "")) if isinstance(channel, Mapping) else str(channel)
    if not channel_id:
        return "dm"  # App Home and modals: `origin_conversation` answers in the user's DM
    name = str(channel.get("name", "")) if isinstance(channel, Mapping) else ""
    return kind_from(channel_id, channel_name=name)


def origin_conversation(body: Payload, tenant: str) -> ConversationRef:
    """Where a click or shortcut happened; App Home and modals fall back to the user's DM."""
    channel = body.get("channel") or {}
    channel_id = str(channel.get("id", "")) if isinstance(channel, Mapping) else str(channel)
    user_id = user_of(body)
    if not channel_id:
        return ConversationRef(PLATFORM, tenant, user_id, "dm")
    name = str(channel.get("name", "")) if isinstance(channel, Mapping) else ""
    return conversation(tenant, channel_id, kind_from(channel_id, channel_name=name) or "private", name)


def user_of(body: Payload) -> str:
    user = body.get("user") or {}
    return str(user.get("id", "")) if isinstance(user, Mapping) else str(user or body.get("user_id", ""))


def user_ref_of(body: Payload, tenant: str) -> UserRef:
    user = body.get("user") or {}
    name = str(user.get("username") or user.get("name") or "") if isinstance(user, Mapping) else ""
    return UserRef(PLATFORM, tenant, user_of(body), name)


def button_click(body: Payload, action: Payload) -> IncomingMessage | None:
    tenant = team_of(body)
    command = str(action.get("value") or "").strip()
    if not command or not user_of(body):
        return None
    message = body.get("message") or {}
    thread = message.get("thread_ts") if isinstance(message, Mapping) else None
    return IncomingMessage(
        id=f"btn-{body.get('trigger_id', '')}",
        text=parse_text(command, tenant).text,
        sender=user_ref_of(body, tenant),
        conversation=origin_conversation(body, tenant),
        addressed=True,
        thread_id=str(thread) if thread else None,
        via="button",
    )


def shortcut_message(body: Payload, command: str, permalink: str = "") -> IncomingMessage | None:
    """A message shortcut: the command runs about the message it was used on, in its thread."""
    tenant = team_of(body)
    message = body.get("message") or {}
    if not isinstance(message, Mapping) or not user_of(body):
        return None
    ts = str(message.get("ts", ""))
    parsed = parse_text(str(message.get("text", "")), tenant)
    return IncomingMessage(
        id=f"sc-{body.get('trigger_id', '')}",
        text=command,
        sender=user_ref_of(body, tenant),
        conversation=origin_conversation(body, tenant),
        addressed=True,
        mentions=parsed.mentions,
        thread_id=str(message.get("thread_ts") or ts) or None,
        source_text=parsed.text,
        source_permalink=permalink,
        source_id=ts or None,
        via="shortcut",
    )


def form_values(view: Payload) -> dict[str, str]:
    """A modal's submitted state: one value per block (block_id = field name)."""
    out: dict[str, str] = {}
    state = ((view.get("state") or {}).get("values") or {}) if isinstance(view, Mapping) else {}
    for block_id, actions in state.items():
        for value in (actions or {}).values():
            kind = value.get("type")
            if kind == "checkboxes":
                out[block_id] = "true" if value.get("selected_options") else "false"
            elif kind == "static_select":
                selected = value.get("selected_option") or {}
                out[block_id] = str(selected.get("value", ""))
            else:
                out[block_id] = str(value.get("value") or "")
    return out
