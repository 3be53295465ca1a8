"""Matrix events (client-server JSON, as a sync returns them) → neutral events. Pure: no SDK, no I/O.

`parse(room, event, bot)` takes what the runtime knows of the room (`Room`: id, kind, name,
display names), the event's JSON (nio's `event.source`; for an encrypted room the
*decrypted* event's source) and the bot's own facts (`BotView`: user id, allowed
homeservers, command prefix), and returns the events for the core.

What a message means:
- addressed when it starts with (or contains) the command prefix `!causette`, mentions the
  bot (a pill `https://matrix.to/#/@causette:server` in `formatted_body`, its plain id, or
  `@causette`), or is written in a direct chat; the bot's mention is cut out and
  `bot_mention_at` says where it stood (bot/addressing.py);
- the text is the plain `body`, never the HTML: `formatted_body` is read only for pills,
  whose link text in `body` becomes a mention marker (so hostile HTML is never rendered,
  and a pill can never smuggle markup); plain `@user:server` ids become markers too;
- a reply's fallback (`> <@u:s> …` lines quoting the replied-to message) is cut from `body`;
- `m.thread` relations give the thread, `m.replace` an edit (its `m.new_content`),
  `m.annotation` a reaction; a redaction deletes a message, or removes a reaction the
  runtime remembers (`reactions`);
- membership gives MembersChanged (the bot's own join: `bot_joined`) and, on a display name
  change, a ProfileUpdate.
Nothing from a server outside the allow-list and nothing the bot sent is handed to the core.
Bodies are cut at MAX_BODY characters before anything else is done with them.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import unquote

from bot.text import mention_marker, sanitize
from bot.types import (
    ConversationKind,
    ConversationRef,
    Event,
    IncomingMessage,
    MembersChanged,
    MessageDeleted,
    MessageEdited,
    ProfileUpdate,
    ReactionAdded,
    UserRef,
)

PLATFORM = "matrix"
MAX_BODY = 16_000          # characters of a body looked at (a 64 KB message is cut, never refused)
MAX_FORMATTED = 64_000     # characters of formatted_body scanned for pills
MAX_PILLS = 50
_BOT_MARK = "\u27e6\u27e7"  # where the bot's mention stood, until the text is plain (sanitize removed typed ones)
_PILL = re.compile(
    r"""<a\s[^>]*?href\s*=\s*["']https://matrix\.to/#/((?:@|%40)[^"'?/\s>]+)[^"'>]*["'][^>]*>(.*?)</a\s*>""",
    re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_MX_REPLY = re.compile(r"<mx-reply>.*?</mx-reply>", re.IGNORECASE | re.DOTALL)
# A Matrix user id typed in plain text: @localpart:server(:port). Not after a word character
# (an e-mail address) and never followed by more of a URL path.
_USER_ID = re.compile(r"(?<![\w@/])@([a-z0-9._=\-/+]+):((?:[a-z0-9\-]+\.)*[a-z0-9\-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?",
                      re.IGNORECASE)
_SPACE_RUNS = re.compile(r"[ \t\u00a0]+")


@dataclass(frozen=True)
class BotView:
    """The bot's own facts, the same for every event."""

    user_id: str                                   # @causette:example.org
    allowed_servers: frozenset[str] = frozenset()  # empty: the bot's own server only
    prefix: str = "!causette"
    display_name: str = ""

    @property
    def server(self) -> str:
        return self.user_id.partition(":")[2]

    @property
    def localpart(self) -> str:
        return self.user_id[1:].partition(":")[0]

    def allows(self, user_id: str) -> bool:
        server = server_of(user_id).lower()
        return bool(server) and server in (self.allowed_servers or frozenset({self.server.lower()}))


@dataclass(frozen=True)
class Room:
    """What the runtime knows of a room when the event is parsed."""

    id: str
    kind: ConversationKind = "private"        # dm | public | private (`room_kind`)
    name: str = ""
    names: Mapping[str, str] = field(default_factory=dict)  # user id → display name in this room
    members: tuple[str, ...] = ()             # joined members, for the bot's own join


@dataclass(frozen=True)
class Parsed:
    events: tuple[Event, ...]
    dedup_key: str | None
    ignored: str = ""                  # why nothing was handed to the core ("" when something was, or nothing to say)
    reaction: tuple[str, str, str] | None = None  # a reaction event: (target event id, key, sender), to remember
    reply_to: str | None = None        # the event a message replies to (a card answered by its number)


def server_of(user_id: str) -> str:
    return user_id.partition(":")[2] if user_id.startswith("@") else ""


def room_kind(is_direct: bool, join_rule: str | None) -> ConversationKind:
    """A direct chat is a DM; a room anyone may join is public; any other room is private."""
    if is_direct:
        return "dm"
    return "public" if (join_rule or "") == "public" else "private"


def dedup_key(event: Mapping[str, Any]) -> str | None:
    """Event ids are unique on the whole federation: one row per event, whatever the room."""
    eid = event.get("event_id")
    return f"matrix:{eid}" if isinstance(eid, str) and eid else None


def sent_at(event: Mapping[str, Any]) -> datetime | None:
    ts = event.get("origin_server_ts")
    if isinstance(ts, bool) or not isinstance(ts, int):
        return None
    try:
        return datetime.fromtimestamp(ts / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def permalink(room_id: str, event_id: str) -> str:
    return f"https://matrix.to/#/{room_id}/{event_id}"


def conversation(room: Room, tenant: str, thread_id: str | None = None) -> ConversationRef:
    return ConversationRef(PLATFORM, tenant, room.id, room.kind, thread_id=thread_id, name=room.name[:200])


def _user(uid: str, room: Room, tenant: str, name: str = "") -> UserRef:
    return UserRef(PLATFORM, tenant, uid, (name or room.names.get(uid) or "")[:200])


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# Text ------------------------------------------------------------------------------------
def strip_reply_fallback(body: str) -> str:
    """`body` without the quoted lines a reply starts with (`> <@u:s> …`, then an empty line)."""
    lines = body.split("\n")
    n = 0
    while n < len(lines) and lines[n].startswith(">"):
        n += 1
    if n == 0:
        return body
    if n < len(lines) and lines[n].strip() == "":
        n += 1
    return "\n".join(lines[n:])


def pills(formatted: str) -> list[tuple[str, str]]:
    """The (user id, link text) of each user pill in a formatted body, in order (a reply's
    quoted fallback excluded). Link text is plain: tags dropped, entities decoded."""
    found: list[tuple[str, str]] = []
    text = _MX_REPLY.sub("", formatted[:MAX_FORMATTED])
    for m in _PILL.finditer(text):
        uid = unquote(m.group(1))
        if not uid.startswith("@") or ":" not in uid:
            continue
        label = html.unescape(_TAG.sub("", m.group(2))).strip()
        found.append((uid, label))
        if len(found) >= MAX_PILLS:
            break
    return found


@dataclass(frozen=True)
class Text:
    text: str
    mentions: tuple[UserRef, ...]
    bot_mentioned: bool
    bot_mention_at: int | None


def convert(content: Mapping[str, Any], room: Room, tenant: str, bot: BotView, *, reply: bool) -> Text:
    """A message content's plain text with markers for the people it mentions (the bot's own
    mention cut out), the people mentioned, and whether and where the bot was mentioned."""
    body = sanitize(_str(content.get("body"))[:MAX_BODY])
    if reply:
        body = strip_reply_fallback(body)
    formatted = _str(content.get("formatted_body")) if _str(content.get("format")) == "org.matrix.custom.html" else ""
    mentions: list[UserRef] = []
    bot_mentioned = False

    def mark(uid: str, label: str = "") -> str | None:
        """The marker for `uid` (the bot's mark for the bot), None for someone not allowed."""
        nonlocal bot_mentioned
        if uid == bot.user_id:
            bot_mentioned = True
            return _BOT_MARK
        if not bot.allows(uid):
            return None
        ref = _user(uid, room, tenant, label if label and not label.startswith("@") else "")
        if all(m.id != uid for m in mentions):
            mentions.append(ref)
        return mention_marker(uid)

    # 1. Pills: their link text in the body becomes the marker (one occurrence each, in order).
    out: list[str] = []
    pos = 0
    for uid, label in pills(formatted) if formatted else []:
        if not label:
            continue
        at = body.find(label, pos)
        if at < 0:
            continue
        start = at - 1 if at > 0 and body[at - 1] == "@" and not label.startswith("@") else at
        marker = mark(uid, label)
        if marker is None:
            continue
        out.append(body[pos:start])
        out.append(marker)
        pos = at + len(label)
        if pos < len(body) and body[pos] == ":" and start == 0:  # Element's "Name: " at the start
            pos += 1
    out.append(body[pos:])
    text = "".join(out)

    # 2. Plain user ids, 3. the bot's short mention and the command prefix.
    def plain_id(m: re.Match[str]) -> str:
        uid = m.group(0)
        marker = mark(uid)
        return m.group(0) if marker is None else marker

    text = _USER_ID.sub(plain_id, text)
    names = {bot.localpart, *(n for n in (bot.display_name,) if n)}
    short = re.compile(r"(?<![\w@])@(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                       + r")(?![\w:])", re.IGNORECASE)
    if short.search(text):
        bot_mentioned = True
        text = short.sub(_BOT_MARK, text)
    prefix = re.compile(r"(?<![\w!])" + re.escape(bot.prefix) + r"(?![\w])", re.IGNORECASE)
    if prefix.search(text):
        bot_mentioned = True
        text = prefix.sub(_BOT_MARK, text)
    text, at = cut_bot_mark(text)
    return Text(text, tuple(mentions), bot_mentioned, at)


def cut_bot_mark(text: str) -> tuple[str, int | None]:
    """The plain text without the bot's mentions, and where the first one stood (None: nowhere)."""
    text = "\n".join(_SPACE_RUNS.sub(" ", line).strip() for line in text.split("\n")).strip()
    if _BOT_MARK not in text:
        return text, None
    before, _, after = text.partition(_BOT_MARK)
    before, after = before.rstrip(" "), after.replace(_BOT_MARK, " ").lstrip(" ")
    glue = " " if before and after and not before.endswith("\n") and not after.startswith("\n") else ""
    return _SPACE_RUNS.sub(" ", before + glue + after).strip(), len(before)


# Events ----------------------------------------------------------------------------------
WRITTEN_TYPES = frozenset({"m.room.message", "m.reaction", "m.room.redaction", "m.room.member"})


def worth_writing(event: Mapping[str, Any], bot: BotView) -> bool:
    """Whether the sync loop writes the event to the inbox: what `parse` could make something
    of (not the bot's own messages, nor anything from a server outside the allow-list, nor
    notices, which are other bots')."""
    kind = _str(event.get("type"))
    sender = _str(event.get("sender"))
    if kind not in WRITTEN_TYPES or not sender:
        return False
    if kind == "m.room.member":
        return True
    if sender == bot.user_id or not bot.allows(sender):
        return False
    if kind == "m.room.message":
        content = _dict(event.get("content"))
        return _str(content.get("msgtype")) in ("m.text", "m.emote") or \
            _dict(content.get("m.relates_to")).get("rel_type") == "m.replace"
    return True


def parse(room: Room, event: Mapping[str, Any], bot: BotView,
          reactions: Mapping[str, tuple[str, str, str]] | None = None) -> Parsed:
    """One room event → neutral events. `reactions`: reaction events the runtime remembers
    (event id → (target, key, sender)), so that redacting one removes the reaction."""
    tenant = bot.server
    key = dedup_key(event)
    kind = _str(event.get("type"))
    sender = _str(event.get("sender"))
    content = _dict(event.get("content"))
    if not kind or not sender:
        return Parsed((), key, "not a room event")
    if sender == bot.user_id and kind != "m.room.member":
        return Parsed((), key, "sent by the bot itself")
    if kind != "m.room.member" and not bot.allows(sender):
        return Parsed((), key, f"sender's server {server_of(sender) or '?'} is not allowed")
    if kind == "m.room.message":
        rel = _dict(content.get("m.relates_to"))
        in_reply = _str(_dict(rel.get("m.in_reply_to")).get("event_id"))
        reply_to = in_reply if in_reply and not (rel.get("rel_type") == "m.thread" and rel.get("is_falling_back")) else None
        return Parsed(_message(room, event, content, bot, tenant), key, reply_to=reply_to)
    if kind == "m.reaction":
        rel = _dict(content.get("m.relates_to"))
        target, emoji = _str(rel.get("event_id")), _str(rel.get("key"))[:64]
        if rel.get("rel_type") != "m.annotation" or not target or not emoji:
            return Parsed((), key, "not an annotation")
        return Parsed((ReactionAdded(target, conversation(room, tenant), _user(sender, room, tenant), emoji),), key,
                      reaction=(target, emoji, sender))
    if kind == "m.room.redaction":
        redacts = _str(event.get("redacts")) or _str(content.get("redacts"))
        if not redacts:
            return Parsed((), key, "redaction of nothing")
        known = (reactions or {}).get(redacts)
        if known is not None:
            target, emoji, who = known
            if who != sender and not bot.allows(who):
                return Parsed((), key, "reaction of a foreign server")
            return Parsed((ReactionAdded(target, conversation(room, tenant), _user(who, room, tenant), emoji, removed=True),), key)
        return Parsed((MessageDeleted(redacts, conversation(room, tenant), deleted_at=sent_at(event)),), key)
    if kind == "m.room.member":
        return Parsed(_membership(room, event, content, bot, tenant), key)
    return Parsed((), key, f"{kind[:60]} is not handled")


def _message(room: Room, event: Mapping[str, Any], content: Mapping[str, Any], bot: BotView,
             tenant: str) -> tuple[Event, ...]:
    msgtype = _str(content.get("msgtype"))
    rel = _dict(content.get("m.relates_to"))
    sender = _user(_str(event.get("sender")), room, tenant)
    eid = _str(event.get("event_id"))
    if rel.get("rel_type") == "m.replace":
        new = _dict(content.get("m.new_content"))
        target = _str(rel.get("event_id"))
        if not target or not new or _str(new.get("msgtype")) not in ("m.text", "m.emote"):
            return ()
        text = convert(new, room, tenant, bot, reply=False)
        return (MessageEdited(id=target, text=text.text, sender=sender, conversation=conversation(room, tenant),
                              mentions=text.mentions, edited_at=sent_at(event)),)
    if msgtype not in ("m.text", "m.emote"):
        return ()  # notices are other bots' (never answered: no bot loops), media are not indexed
    thread_id = _str(rel.get("event_id")) if rel.get("rel_type") == "m.thread" else ""
    in_reply = _dict(rel.get("m.in_reply_to"))
    is_reply = bool(in_reply.get("event_id")) and not (thread_id and rel.get("is_falling_back"))
    text = convert(content, room, tenant, bot, reply=is_reply)
    conv = conversation(room, tenant, thread_id or None)
    addressed = room.kind == "dm" or text.bot_mentioned
    return (IncomingMessage(id=eid, text=text.text, sender=sender, conversation=conv, addressed=addressed,
                            mentions=text.mentions, sent_at=sent_at(event), permalink=permalink(room.id, eid),
                            thread_id=thread_id or None, via="mention" if text.bot_mentioned else "message",
                            bot_mention_at=text.bot_mention_at),)


def _membership(room: Room, event: Mapping[str, Any], content: Mapping[str, Any], bot: BotView,
                tenant: str) -> tuple[Event, ...]:
    who = _str(event.get("state_key"))
    if not who.startswith("@"):
        return ()
    now = _str(content.get("membership"))
    prev_content = _dict(_dict(event.get("unsigned")).get("prev_content"))
    before = _str(prev_content.get("membership"))
    name = _str(content.get("displayname"))[:200]
    conv = conversation(room, tenant)
    if who == bot.user_id:
        if now == "join" and before != "join":
            joined = tuple(_user(m, room, tenant) for m in room.members if m != bot.user_id and bot.allows(m))
            return (MembersChanged(conv, joined=joined, bot_joined=True),)
        if now in ("leave", "ban") and before == "join":
            return (MembersChanged(conv, bot_left=True),)
        return ()
    if not bot.allows(who):
        return ()
    user = _user(who, room, tenant, name)
    if now == "join" and before != "join":
        return (MembersChanged(conv, joined=(user,)),)
    if now == "join" and before == "join":
        old = _str(prev_content.get("displayname"))
        return (ProfileUpdate(user, real_name=name),) if name and name != old else ()
    if now in ("leave", "ban") and before == "join":
        return (MembersChanged(conv, left=(user,)),)
    return ()
