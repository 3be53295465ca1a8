"""Matrix events → neutral events (adapters/matrix/inbound.py), pure: no homeserver."""
from __future__ import annotations

from typing import Any

from adapters.matrix import inbound
from adapters.matrix.inbound import BotView, Room, parse, worth_writing
from bot.text import extract_hashtags, mention_marker
from bot.types import IncomingMessage, MembersChanged, MessageDeleted, MessageEdited, ProfileUpdate, ReactionAdded

BOT = BotView("@causette:example.org", frozenset({"example.org", "partner.org"}), "!causette", "Causette")
ROOM = Room("!room:example.org", "public", "general", {"@sophie:example.org": "Sophie Martin"})
DM = Room("!dm:example.org", "dm")


def message(body: str, sender: str = "@sophie:example.org", formatted: str | None = None, **content: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"msgtype": "m.text", "body": body, **content}
    if formatted is not None:
        c.update(format="org.matrix.custom.html", formatted_body=formatted)
    return {"type": "m.room.message", "event_id": "$e1", "sender": sender, "origin_server_ts": 1764547200000,
            "room_id": ROOM.id, "content": c}


def one(room: Room, event: dict[str, Any]) -> Any:
    parsed = parse(room, event, BOT)
    assert len(parsed.events) == 1, parsed
    return parsed.events[0]


def test_the_command_prefix_addresses_the_bot_and_is_cut_from_the_text() -> None:
    msg = one(ROOM, message("!causette who knows kubernetes"))
    assert isinstance(msg, IncomingMessage)
    assert msg.addressed and msg.text == "who knows kubernetes" and msg.bot_mention_at == 0 and msg.via == "mention"
    assert msg.conversation.kind == "public" and msg.conversation.tenant == "example.org" and msg.sender.display_name == "Sophie Martin"
    assert msg.sent_at is not None and msg.sent_at.year == 2025
    assert msg.permalink == "https://matrix.to/#/!room:example.org/$e1"


def test_a_plain_message_in_a_room_is_not_addressed_but_anything_in_a_direct_chat_is() -> None:
    assert not one(ROOM, message("who knows kubernetes")).addressed
    dm = one(DM, message("who knows kubernetes"))
    assert dm.addressed and dm.text == "who knows kubernetes" and dm.conversation.kind == "dm"


def test_the_bots_pill_or_short_mention_anywhere_addresses_it_and_says_where() -> None:
    pill = message("hey Causette: who knows pricing?",
                   formatted='hey <a href="https://matrix.to/#/@causette:example.org">Causette</a>: who knows pricing?')
    msg = one(ROOM, pill)
    assert msg.addressed and msg.text == "hey : who knows pricing?" and msg.bot_mention_at == 3
    short = one(ROOM, message("who knows pricing @causette?"))
    assert short.addressed and short.text == "who knows pricing ?" and short.bot_mention_at == len("who knows pricing")
    plain_id = one(ROOM, message("@causette:example.org help"))
    assert plain_id.addressed and plain_id.text == "help"


def test_pills_and_plain_ids_become_mention_markers_of_allowed_people_only() -> None:
    formatted = ('thanks <a href="https://matrix.to/#/%40julien%3Aexample.org">Julien</a> and '
                 '<a href="https://matrix.to/#/@eve:evil.org">Eve</a>')
    msg = one(ROOM, message("thanks Julien and Eve, cc @lea:partner.org and @mallory:evil.org", formatted=formatted))
    assert msg.text == f"thanks {mention_marker('@julien:example.org')} and Eve, cc {mention_marker('@lea:partner.org')} and @mallory:evil.org"
    assert [m.id for m in msg.mentions] == ["@julien:example.org", "@lea:partner.org"]
    assert msg.mentions[0].display_name == "Julien"


def test_an_email_address_is_not_a_mention() -> None:
    msg = one(ROOM, message("write to bob@example.org"))
    assert msg.text == "write to bob@example.org" and msg.mentions == ()


def test_typed_marker_brackets_cannot_forge_a_mention() -> None:
    msg = one(ROOM, message("hi \u27e6@@julien:example.org\u27e7"))
    assert "\u27e6" not in msg.text.replace(mention_marker("@julien:example.org"), "")


def test_hostile_html_in_formatted_body_is_never_read_only_body_is() -> None:
    formatted = '<img src=x onerror=alert(1)><a href="javascript:alert(1)">click</a><script>steal()</script>'
    msg = one(ROOM, message("just text <b>not bold</b>", formatted=formatted))
    assert msg.text == "just text <b>not bold</b>"  # literal: escaped by every renderer
    assert msg.mentions == ()


def test_a_room_alias_typed_as_a_hashtag_is_not_a_hashtag() -> None:
    msg = one(ROOM, message("see #general:example.org about #kubernetes"))
    assert extract_hashtags(msg.text) == ("kubernetes",)


def test_a_replys_fallback_is_cut_from_the_body() -> None:
    body = "> <@julien:example.org> who knows #pricing?\n> second line\n\n!causette yes I do"
    event = message(body, formatted="<mx-reply><blockquote><a href=\"https://matrix.to/#/@julien:example.org\">Julien</a>"
                    "</blockquote></mx-reply>yes I do", **{"m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}})
    parsed = parse(ROOM, event, BOT)
    msg = parsed.events[0]
    assert msg.text == "yes I do" and msg.mentions == () and parsed.reply_to == "$orig"
    assert extract_hashtags(msg.text) == ()


def test_a_quote_without_a_reply_is_kept() -> None:
    assert one(ROOM, message("> a quote\n\nmy words")).text == "> a quote\n\nmy words"


def test_a_thread_message_carries_its_thread() -> None:
    event = message("!causette help", **{"m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
                                                         "m.in_reply_to": {"event_id": "$last"}}})
    parsed = parse(ROOM, event, BOT)
    msg = parsed.events[0]
    assert msg.thread_id == "$root" and msg.conversation.thread_id == "$root" and parsed.reply_to is None


def test_an_edit_uses_the_new_content() -> None:
    event = message("* fixed #typo", **{"m.new_content": {"msgtype": "m.text", "body": "fixed #typo @julien:example.org"},
                                        "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}})
    edit = one(ROOM, event)
    assert isinstance(edit, MessageEdited) and edit.id == "$orig"
    assert edit.text == "fixed #typo " + mention_marker("@julien:example.org")


def test_reactions_and_their_redaction() -> None:
    react = {"type": "m.reaction", "event_id": "$r1", "sender": "@julien:example.org",
             "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$msg", "key": "👍"}}}
    parsed = parse(ROOM, react, BOT)
    assert parsed.events == (ReactionAdded("$msg", inbound.conversation(ROOM, "example.org"),
                                           parsed.events[0].user, "👍"),)
    assert parsed.reaction == ("$msg", "👍", "@julien:example.org")
    redaction = {"type": "m.room.redaction", "event_id": "$x", "sender": "@julien:example.org", "redacts": "$r1", "content": {}}
    removed = parse(ROOM, redaction, BOT, {"$r1": parsed.reaction}).events[0]
    assert isinstance(removed, ReactionAdded) and removed.removed and removed.message_id == "$msg"


def test_a_redaction_of_an_unknown_event_is_a_harmless_delete() -> None:
    deleted = one(ROOM, {"type": "m.room.redaction", "event_id": "$x", "sender": "@julien:example.org",
                         "content": {"redacts": "$never-seen"}})
    assert isinstance(deleted, MessageDeleted) and deleted.id == "$never-seen"


def test_the_bots_own_messages_and_foreign_servers_are_ignored() -> None:
    assert parse(ROOM, message("!causette help", sender=BOT.user_id), BOT).events == ()
    foreign = parse(ROOM, message("!causette help", sender="@eve:evil.org"), BOT)
    assert foreign.events == () and "evil.org" in foreign.ignored
    assert not worth_writing(message("hi", sender="@eve:evil.org"), BOT)
    assert not worth_writing(message("hi", sender=BOT.user_id), BOT)
    assert worth_writing(message("hi"), BOT)


def test_notices_are_other_bots_and_never_answered() -> None:
    event = message("!causette help")
    event["content"]["msgtype"] = "m.notice"
    assert parse(ROOM, event, BOT).events == () and not worth_writing(event, BOT)


def test_a_64_kb_message_is_cut_not_refused() -> None:
    body = "!causette who knows " + "x" * 70_000
    msg = one(ROOM, message(body, formatted="<p>" + "y" * 70_000 + "</p>"))
    assert msg.addressed and len(msg.text) <= inbound.MAX_BODY


def test_membership_the_bots_join_others_joins_leaves_and_names() -> None:
    room = Room("!r:example.org", "private", "", {}, ("@causette:example.org", "@sophie:example.org", "@eve:evil.org"))
    joined = one(room, {"type": "m.room.member", "event_id": "$j", "sender": BOT.user_id, "state_key": BOT.user_id,
                        "content": {"membership": "join"}, "unsigned": {"prev_content": {"membership": "invite"}}})
    assert isinstance(joined, MembersChanged) and joined.bot_joined and [u.id for u in joined.joined] == ["@sophie:example.org"]
    other = one(room, {"type": "m.room.member", "event_id": "$k", "sender": "@lea:example.org", "state_key": "@lea:example.org",
                       "content": {"membership": "join", "displayname": "Léa"}})
    assert isinstance(other, MembersChanged) and other.joined[0].display_name == "Léa"
    renamed = one(room, {"type": "m.room.member", "event_id": "$l", "sender": "@lea:example.org", "state_key": "@lea:example.org",
                         "content": {"membership": "join", "displayname": "Léa B."},
                         "unsigned": {"prev_content": {"membership": "join", "displayname": "Léa"}}})
    assert isinstance(renamed, ProfileUpdate) and renamed.real_name == "Léa B."
    left = one(room, {"type": "m.room.member", "event_id": "$m", "sender": "@lea:example.org", "state_key": "@lea:example.org",
                      "content": {"membership": "leave"}, "unsigned": {"prev_content": {"membership": "join"}}})
    assert isinstance(left, MembersChanged) and left.left[0].id == "@lea:example.org"
    assert parse(room, {"type": "m.room.member", "event_id": "$n", "sender": "@eve:evil.org", "state_key": "@eve:evil.org",
                        "content": {"membership": "join"}}, BOT).events == ()


def test_room_kinds() -> None:
    assert inbound.room_kind(True, "invite") == "dm"
    assert inbound.room_kind(False, "public") == "public"
    assert inbound.room_kind(False, "invite") == "private"
    assert inbound.room_kind(False, None) == "private"


def test_malformed_events_do_not_raise() -> None:
    for event in ({}, {"type": "m.room.message"}, {"type": "m.room.message", "sender": "@sophie:example.org", "content": "x"},
                  {"type": "m.room.message", "sender": "@sophie:example.org", "content": {"body": 12, "msgtype": "m.text"}},
                  {"type": "m.reaction", "sender": "@sophie:example.org", "content": {"m.relates_to": []}},
                  {"type": "m.room.member", "sender": "@sophie:example.org", "state_key": 5, "content": {}}):
        parse(ROOM, event, BOT)


def test_public_read_receipts_become_readers_not_the_bots_nor_foreign_ones() -> None:
    from bot.types import MessageRead

    content = {"$m1": {"m.read": {"@sophie:example.org": {"ts": 1764547200000}, BOT.user_id: {"ts": 1},
                                  "@eve:evil.org": {"ts": 1}},
                       "m.read.private": {"@julien:example.org": {"ts": 1}}}}
    parsed = parse(ROOM, {"type": "m.receipt", "content": content}, BOT)
    assert [(e.message_id, e.user.id) for e in parsed.events] == [("$m1", "@sophie:example.org")]
    assert isinstance(parsed.events[0], MessageRead) and parsed.events[0].read_at is not None
    assert worth_writing({"type": "m.receipt", "content": content}, BOT)
    assert not worth_writing({"type": "m.receipt", "content": {"$m1": {"m.read": {BOT.user_id: {"ts": 1}}}}}, BOT)


def test_invites_are_accepted_from_allowed_servers_only() -> None:
    assert inbound.invite_allowed("!r:example.org", "@sophie:example.org", BOT)
    assert inbound.invite_allowed("!roomv12hash", "@lea:partner.org", BOT)  # room ids without a server part
    assert not inbound.invite_allowed("!r:evil.org", "@sophie:example.org", BOT)  # a room on a foreign server
    assert not inbound.invite_allowed("!r:example.org", "@eve:evil.org", BOT)
    assert not inbound.invite_allowed("!r:example.org", "", BOT)
    default = BotView("@causette:example.org")  # no allow-list: the bot's own server only
    assert default.allows("@sophie:example.org") and not default.allows("@lea:partner.org")
