"""Teams activities (Bot Framework wire JSON) → neutral events. Pure: no SDK, no I/O.

Works on the activity's JSON dict (camelCase, as Teams posts it), so it can be tested
from recorded payloads and survives a switch away from botbuilder.
"""
from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from bot.text import channel_ids_in, channel_marker, mention_marker, sanitize
from bot.types import (
    ConversationKind,
    ConversationRef,
    Event,
    IncomingMessage,
    MembersChanged,
    MessageDeleted,
    MessageEdited,
    ReactionAdded,
    UserRef,
)

PLATFORM = "teams"
_BREAK_TAGS = re.compile(r"<\s*(br|/p|/div|/li)\s*/?>", re.IGNORECASE)
_KNOWN_TAGS = re.compile(
    r"</?\s*(p|div|span|b|i|u|s|em|strong|a|ul|ol|li|code|pre|blockquote|at|img|h[1-6]|table|tr|td|th|tbody|thead)\b[^>]*>",
    re.IGNORECASE,
)
_SPACE_RUNS = re.compile(r"[ \t\u00a0]+")
# Stands where the bot's own `<at>` was until the text is plain; `sanitize` has replaced any
# bracket a person typed, so only `convert_mentions` can have put it there.
_BOT_MARK = "\u27e6\u27e7"
_REACTIONS = {"like": "+1", "heart": "heart", "laugh": "laughing", "surprised": "open_mouth", "sad": "cry", "angry": "angry"}


class BadActivity(ValueError):
    """The activity lacks what any Teams activity carries (conversation, sender)."""


@dataclass(frozen=True)
class Parsed:
    """What one activity means: events for the core plus facts the shell needs."""

    events: tuple[Event, ...]
    tenant: str
    conversation: ConversationRef | None
    dedup_key: str | None
    kind_certain: bool = True          # False: a channel whose membership type Teams did not say (kept private)
    bot_id: str = ""
    sender: UserRef | None = None
    bot_joined: bool = False
    members_added: tuple[UserRef, ...] = ()
    team_id: str = ""


def _get(data: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = data
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def tenant_of(activity: Mapping[str, Any]) -> str:
    return str(_get(activity, "channelData", "tenant", "id") or _get(activity, "conversation", "tenantId") or "")


def user_of(account: Mapping[str, Any] | None, tenant: str) -> UserRef | None:
    """A Teams account → UserRef. The Teams user id (`29:…`) is the person's platform id;
    the AAD object id is used only when Teams gave no user id."""
    if not isinstance(account, Mapping):
        return None
    uid = str(account.get("id") or account.get("aadObjectId") or "")
    if not uid:
        return None
    is_bot = uid.startswith("28:") or account.get("role") == "bot"
    return UserRef(PLATFORM, tenant, uid, str(account.get("name") or ""), is_bot=is_bot)


def conversation_of(activity: Mapping[str, Any], tenant: str) -> tuple[ConversationRef, bool]:
    """The conversation and whether its kind is certain.

    Channel posts are keyed by the channel id (`19:…@thread.tacv2`), the thread being the
    `;messageid=` suffix. personal → dm, groupChat → group, channel → public only when it is
    a standard channel: `channelData.channel.membershipType` says so, or it is the team's
    General channel (its id is the team's, and General is always standard). Private and
    shared channels are private, and so is a channel Teams did not describe (not certain:
    the shell may still confirm it is standard, see `TeamsTurn`).
    """
    conv = _get(activity, "conversation")
    if not isinstance(conv, Mapping) or not conv.get("id"):
        raise BadActivity("activity without conversation id")
    raw_id = str(conv["id"])
    ctype = str(conv.get("conversationType") or "")
    channel = _get(activity, "channelData", "channel")
    if not ctype:
        ctype = "channel" if isinstance(channel, Mapping) and channel.get("id") else ("groupChat" if conv.get("isGroup") else "personal")
    thread_id: str | None = None
    certain = True
    if ctype == "channel":
        base, _, rest = raw_id.partition(";messageid=")
        cid = str(_get(channel, "id") or base)
        thread_id = rest or None
        membership = str(_get(channel, "membershipType") or _get(channel, "type") or "").casefold()
        if membership == "standard" or (not membership and cid == str(_get(activity, "channelData", "team", "id") or "")):
            kind: ConversationKind = "public"
        else:
            kind = "private"
            certain = membership in ("private", "shared")
        name = str(_get(channel, "name") or conv.get("name") or "")
    elif ctype == "groupChat":
        cid, kind, name = raw_id, "group", str(conv.get("name") or "")
    else:
        cid, kind, name = raw_id, "dm", ""
    return ConversationRef(PLATFORM, tenant, cid, kind, thread_id=thread_id, name=name), certain


def locale_of(activity: Mapping[str, Any]) -> str | None:
    loc = str(activity.get("locale") or "").lower()
    return loc[:2] if loc[:2] in ("en", "fr") else None


def sent_at(activity: Mapping[str, Any]) -> datetime | None:
    stamp = activity.get("timestamp")
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def plain_text(text: str) -> str:
    """Teams message HTML → plain text: line breaks kept, tags dropped, entities decoded."""
    text = _BREAK_TAGS.sub("\n", text)
    text = _KNOWN_TAGS.sub("", text)
    text = html.unescape(text)
    text = _SPACE_RUNS.sub(" ", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def convert_mentions(text: str, entities: Any, bot_id: str, tenant: str, *,
                     bot_mark: str = " ") -> tuple[str, tuple[UserRef, ...], bool]:
    """Replace each `<at>…</at>` mention by a marker, the bot's own by `bot_mark`.

    Returns the text, the people mentioned and whether the bot was mentioned.
    """
    mentions: list[UserRef] = []
    bot_mentioned = False
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, Mapping) or entity.get("type") != "mention":
            continue
        who = entity.get("mentioned")
        at_text = str(entity.get("text") or "")
        if not isinstance(who, Mapping) or not who.get("id"):
            continue
        if str(who["id"]) == bot_id or (bot_id == "" and str(who["id"]).startswith("28:")):
            bot_mentioned = True
            if at_text:
                text = text.replace(at_text, bot_mark, 1)
            continue
        target_type = str(who.get("type") or "").casefold()
        if target_type in ("tag", "team", "channel") or str(who["id"]).startswith("19:"):
            # a tag, team or channel mention pings a group, never one person: keep it as text
            replacement = channel_marker(str(who["id"])) if str(who["id"]).startswith("19:") else "@" + str(who.get("name") or "")
            if at_text:
                text = text.replace(at_text, replacement, 1)
            continue
        ref = user_of(who, tenant)
        if ref is None:
            continue
        marker = mention_marker(ref.id)
        if at_text and at_text in text:
            text = text.replace(at_text, marker, 1)
        if ref not in mentions:
            mentions.append(ref)
    return text, tuple(mentions), bot_mentioned


def dedup_key(activity: Mapping[str, Any]) -> str | None:
    """Retried or replayed deliveries share the activity id; edits of one message differ by
    their text. Message ids are only unique within a conversation, so its id is part of the key."""
    aid = activity.get("id")
    if not aid:
        return None
    kind = str(activity.get("type") or "")
    conversation = str(_get(activity, "conversation", "id") or "")
    key = f"teams:{kind}:{aid}:{conversation}"
    if kind == "messageUpdate" or _get(activity, "channelData", "eventType") == "editMessage":
        key += ":" + hashlib.sha1(str(activity.get("text") or "").encode()).hexdigest()[:16]
    if kind == "messageReaction":
        digest = repr((activity.get("reactionsAdded"), activity.get("reactionsRemoved"), _get(activity, "from", "id")))
        key += ":" + hashlib.sha1(digest.encode()).hexdigest()[:16]
    return key


# Message extension actions (the "…" menu of a message: `composeExtensions` in the manifest):
# command id → the command it runs about that message.
MESSAGE_ACTIONS = {"suggest": "suggest"}
SUBMIT_ACTION = "composeExtension/submitAction"


def message_action(activity: Mapping[str, Any]) -> str | None:
    """The command of one of Causette's message actions submitted on a message, else None."""
    if activity.get("type") != "invoke" or activity.get("name") != SUBMIT_ACTION:
        return None
    value = activity.get("value")
    if not isinstance(value, Mapping):
        return None
    return MESSAGE_ACTIONS.get(str(value.get("commandId") or ""))


def _message_action(activity: Mapping[str, Any], command: str, conversation: ConversationRef, sender: UserRef,
                    bot_id: str, tenant: str) -> IncomingMessage:
    """The action as the command, about the message it was used on (like a Slack message shortcut):
    the message's text as `source_text`, what the person typed in the action's form as a field."""
    value = activity.get("value") or {}
    payload = value.get("messagePayload") if isinstance(value.get("messagePayload"), Mapping) else {}
    content = sanitize(str(_get(payload, "body", "content") or ""))
    source, _, _ = convert_mentions(content, payload.get("mentions"), bot_id, tenant)
    data = value.get("data") if isinstance(value.get("data"), Mapping) else {}
    typed = {str(k): _form_value(v) for k, v in data.items() if _form_value(v).strip()}
    return IncomingMessage(id=str(activity.get("id") or ""), text=command, sender=sender, conversation=conversation,
                           addressed=True, via="shortcut", locale=locale_of(activity), sent_at=sent_at(activity),
                           thread_id=conversation.thread_id, form_values=typed or None, source_text=plain_text(source),
                           source_permalink=str(payload.get("linkToMessage") or "")[:500],
                           source_id=str(payload.get("id") or "") or None)


def parse(activity: Mapping[str, Any]) -> Parsed:
    """One Teams activity → neutral events. Raises BadActivity when it is not usable at all."""
    if not isinstance(activity, Mapping) or not activity.get("type"):
        raise BadActivity("not an activity")
    tenant = tenant_of(activity)
    if not tenant:
        raise BadActivity("activity without tenant")
    conversation, certain = conversation_of(activity, tenant)
    bot_id = str(_get(activity, "recipient", "id") or "")
    sender = user_of(activity.get("from"), tenant)
    kind = str(activity["type"])
    event_type = str(_get(activity, "channelData", "eventType") or "")
    team_id = str(_get(activity, "channelData", "team", "id") or "")
    base = dict(tenant=tenant, conversation=conversation, dedup_key=dedup_key(activity), kind_certain=certain,
                bot_id=bot_id, sender=sender, team_id=team_id)
    events: list[Event] = []

    if kind == "message" and event_type not in ("editMessage", "softDeleteMessage"):
        if sender is None:
            raise BadActivity("message without sender")
        if sender.id == bot_id:
            return Parsed(events=(), **base)  # type: ignore[arg-type]
        events.append(_message(activity, conversation, sender, bot_id, tenant))
    elif kind == "invoke" and message_action(activity) and sender is not None:
        events.append(_message_action(activity, message_action(activity) or "", conversation, sender, bot_id, tenant))
    elif kind == "messageUpdate" or event_type == "editMessage":
        if sender is not None and activity.get("id"):
            text, mentions, _ = convert_mentions(sanitize(str(activity.get("text") or "")), activity.get("entities"), bot_id, tenant)
            events.append(MessageEdited(id=str(activity["id"]), text=plain_text(text), sender=sender,
                                        conversation=conversation, mentions=mentions, edited_at=sent_at(activity),
                                        channels=channel_ids_in(text)))
    elif kind == "messageDelete" or event_type == "softDeleteMessage":
        if activity.get("id"):
            events.append(MessageDeleted(id=str(activity["id"]), conversation=conversation, deleted_at=sent_at(activity)))
    elif kind == "messageReaction":
        target = str(activity.get("replyToId") or "")
        if sender is not None and target:
            for key, removed in (("reactionsAdded", False), ("reactionsRemoved", True)):
                for reaction in activity.get(key) or []:
                    if isinstance(reaction, Mapping) and reaction.get("type"):
                        name = str(reaction["type"])
                        events.append(ReactionAdded(target, conversation, sender, _REACTIONS.get(name, name), removed=removed))
    elif kind in ("conversationUpdate", "installationUpdate"):
        added = [a for a in activity.get("membersAdded") or [] if isinstance(a, Mapping)]
        removed = [a for a in activity.get("membersRemoved") or [] if isinstance(a, Mapping)]
        action = str(activity.get("action") or "")
        bot_joined = any(str(a.get("id")) == bot_id for a in added) or (kind == "installationUpdate" and action.startswith("add"))
        bot_left = any(str(a.get("id")) == bot_id for a in removed) or (kind == "installationUpdate" and action.startswith("remove"))
        joined = tuple(u for u in (user_of(a, tenant) for a in added) if u is not None and u.id != bot_id)
        left = tuple(u for u in (user_of(a, tenant) for a in removed) if u is not None and u.id != bot_id)
        if joined or left or bot_joined or bot_left:
            events.append(MembersChanged(conversation, joined=joined, left=left, bot_joined=bot_joined, bot_left=bot_left))
        return Parsed(events=tuple(events), bot_joined=bot_joined, members_added=joined, **base)  # type: ignore[arg-type]
    return Parsed(events=tuple(events), **base)  # type: ignore[arg-type]


def _message(activity: Mapping[str, Any], conversation: ConversationRef, sender: UserRef, bot_id: str, tenant: str) -> IncomingMessage:
    value = activity.get("value")
    common = dict(id=str(activity.get("id") or ""), sender=sender, conversation=conversation, locale=locale_of(activity),
                  sent_at=sent_at(activity), thread_id=conversation.thread_id)
    if isinstance(value, Mapping) and isinstance(value.get("command"), str) and value["command"].strip():
        fields = {str(k): _form_value(v) for k, v in value.items() if k != "command"}
        return IncomingMessage(text=value["command"].strip(), addressed=True, via="form" if fields else "button",
                               form_values=fields or None, **common)  # type: ignore[arg-type]
    text, mentions, bot_mentioned = convert_mentions(sanitize(str(activity.get("text") or "")), activity.get("entities"),
                                                     bot_id, tenant, bot_mark=_BOT_MARK)
    text, mention_at = cut_bot_mark(plain_text(text))
    addressed = conversation.kind == "dm" or bot_mentioned
    via = "mention" if bot_mentioned else "message"
    return IncomingMessage(text=text, addressed=addressed, mentions=mentions, via=via, bot_mention_at=mention_at,
                           channels=channel_ids_in(text), **common)  # type: ignore[arg-type]


def cut_bot_mark(text: str) -> tuple[str, int | None]:
    """The plain text without the bot's mentions, and where the first one stood (None: nowhere)."""
    if _BOT_MARK not in text:
        return text, None
    before, _, after = text.partition(_BOT_MARK)
    before, after = before.rstrip(" "), after.replace(_BOT_MARK, " ").lstrip(" ")
    glue = " " if before and after and not before.endswith("\n") and not after.startswith("\n") else ""
    return _SPACE_RUNS.sub(" ", before + glue + after).strip(), len(before)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
