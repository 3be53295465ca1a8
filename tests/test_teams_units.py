"""Teams adapter pieces on their own: inbound parsing from recorded payload shapes, rendering
(mentions, escaping, cards, forms, size limits) and the pacing / retry policy."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from adapters.teams import inbound
from adapters.teams.pacing import Pacer, Retrying, http_status
from adapters.teams.render import MAX_BYTES, Names, cards_of, plain_text, render, size_of
from bot.i18n import Prompts
from bot.text import mention_marker, ping_marker
from bot.types import (Action, Card, Form, FormField, IncomingMessage, MembersChanged, MessageDeleted, MessageEdited,
                       ReactionAdded, Reply)
from tests.conftest import spec_file

BOT = {"id": "28:bot", "name": "Causette"}
T = "tenant-1"


def activity(**extra: Any) -> dict[str, Any]:
    base = {"type": "message", "id": "1", "serviceUrl": "https://smba.example/", "channelId": "msteams",
            "from": {"id": "29:ana", "name": "Ana", "aadObjectId": "aad-ana"}, "recipient": BOT,
            "conversation": {"id": "a:dm", "conversationType": "personal", "tenantId": T},
            "channelData": {"tenant": {"id": T}}, "text": "hello"}
    base.update(extra)
    return base


def channel(**extra: Any) -> dict[str, Any]:
    base = activity(conversation={"id": "19:c@thread.tacv2;messageid=99", "conversationType": "channel", "tenantId": T},
                    channelData={"tenant": {"id": T}, "channel": {"id": "19:c@thread.tacv2", "name": "Sales"},
                                 "team": {"id": "19:team@thread.tacv2"}})
    base.update(extra)
    return base


# Inbound -----------------------------------------------------------------------
def test_personal_message_is_addressed_dm() -> None:
    parsed = inbound.parse(activity(text="help", locale="fr-FR"))
    msg = parsed.events[0]
    assert isinstance(msg, IncomingMessage)
    assert (msg.text, msg.addressed, msg.conversation.kind, msg.locale, parsed.tenant) == ("help", True, "dm", "fr", T)


def test_channel_mention_strips_bot_and_marks_people() -> None:
    at_bot, at_bob = "<at>Causette</at>", "<at>Bob L&#233;ger</at>"
    parsed = inbound.parse(channel(text=f"{at_bot} kudos {at_bob} for &lt;great&gt; work&nbsp;!", entities=[
        {"type": "mention", "text": at_bot, "mentioned": BOT},
        {"type": "mention", "text": at_bob, "mentioned": {"id": "29:bob", "name": "Bob Léger"}},
        {"type": "clientInfo", "locale": "en-US"}]))
    msg = parsed.events[0]
    assert isinstance(msg, IncomingMessage)
    assert msg.text == f"kudos {mention_marker('29:bob')} for <great> work !"
    assert msg.addressed and msg.via == "mention"
    assert [m.id for m in msg.mentions] == ["29:bob"]
    assert msg.conversation.id == "19:c@thread.tacv2" and msg.conversation.thread_id == "99"
    assert msg.conversation.kind == "private" and parsed.kind_certain is False  # Teams did not say: private


def test_channel_message_without_mention_is_ambient_and_html_is_flattened() -> None:
    msg = inbound.parse(channel(text="<p>Who knows <b>#terraform</b>?</p><p>thanks</p>")).events[0]
    assert isinstance(msg, IncomingMessage)
    assert (msg.addressed, msg.text) == (False, "Who knows #terraform?\nthanks")


def test_private_channel_and_group_chat_kinds() -> None:
    private = channel()
    private["channelData"]["channel"]["membershipType"] = "private"
    assert inbound.parse(private).conversation.kind == "private"  # type: ignore[union-attr]
    group = activity(conversation={"id": "19:g@thread.v2", "conversationType": "groupChat", "tenantId": T})
    parsed = inbound.parse(group)
    assert parsed.conversation.kind == "group" and parsed.events[0].addressed is False  # type: ignore[union-attr]


def test_user_cannot_forge_a_mention_marker() -> None:
    msg = inbound.parse(activity(text=f"hi {mention_marker('29:boss')}")).events[0]
    assert "\u27e6" not in msg.text and msg.mentions == ()  # type: ignore[union-attr]


def test_card_submit_becomes_command() -> None:
    button = inbound.parse(activity(text="", value={"command": "idea vote 4"})).events[0]
    form = inbound.parse(activity(text="", value={"command": "idea new", "title": "Bikes", "anonymous": False})).events[0]
    assert (button.text, button.via, button.form_values) == ("idea vote 4", "button", None)  # type: ignore[union-attr]
    assert (form.via, form.form_values) == ("form", {"title": "Bikes", "anonymous": "false"})  # type: ignore[union-attr]


def test_edit_delete_reaction_and_members() -> None:
    edited = inbound.parse(channel(type="messageUpdate", text="new text", channelData={
        "tenant": {"id": T}, "eventType": "editMessage", "channel": {"id": "19:c@thread.tacv2"}}))
    deleted = inbound.parse(channel(type="messageDelete", channelData={
        "tenant": {"id": T}, "eventType": "softDeleteMessage", "channel": {"id": "19:c@thread.tacv2"}}))
    reacted = inbound.parse(channel(type="messageReaction", replyToId="55", reactionsAdded=[{"type": "like"}],
                                    reactionsRemoved=[{"type": "heart"}]))
    members = inbound.parse(channel(type="conversationUpdate", membersAdded=[BOT, {"id": "29:new"}], membersRemoved=[{"id": "29:old"}]))
    assert isinstance(edited.events[0], MessageEdited) and edited.events[0].text == "new text"
    assert isinstance(deleted.events[0], MessageDeleted) and deleted.events[0].id == "1"
    assert [(r.reaction, r.removed) for r in reacted.events if isinstance(r, ReactionAdded)] == [("+1", False), ("heart", True)]
    change = members.events[0]
    assert isinstance(change, MembersChanged) and change.bot_joined and [u.id for u in change.joined] == ["29:new"]
    assert [u.id for u in change.left] == ["29:old"] and members.bot_joined
    assert edited.dedup_key != inbound.parse(channel(type="messageUpdate", text="newer", channelData={
        "tenant": {"id": T}, "eventType": "editMessage", "channel": {"id": "19:c@thread.tacv2"}})).dedup_key


def test_bots_own_messages_and_garbage() -> None:
    assert inbound.parse(activity(**{"from": BOT})).events == ()
    for bad in ({}, {"type": "message"}, activity(conversation={}), activity(channelData={}, conversation={"id": "x"})):
        with pytest.raises(inbound.BadActivity):
            inbound.parse(bad)


# Rendering -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def card_validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(spec_file("adaptive-card-1.5.json").read_text()))


PROMPTS = Prompts.load()


def t_fr(key: str, **params: object) -> str:
    return PROMPTS.t("fr", key, **params)


NAMES = Names({"29:bob": "Bob <Léger>"}, {"19:c@thread.tacv2": "sales"})


def test_mentions_render_as_at_tags_with_matching_entities_and_text_is_escaped() -> None:
    reply = Reply(text=f"Thanks {ping_marker('29:bob')} & <at>Eve</at> in {chr(0x27e6)}#19:c@thread.tacv2{chr(0x27e7)}")
    out = render(reply, NAMES, t_fr)
    assert out["text"] == "Thanks <at>Bob &lt;Léger&gt;</at> &amp; &lt;at&gt;Eve&lt;/at&gt; in \\#sales"
    assert out["entities"] == [{"type": "mention", "text": "<at>Bob &lt;Léger&gt;</at>", "mentioned": {"id": "29:bob", "name": "Bob <Léger>"}}]
    for entity in out["entities"]:
        assert entity["text"] in out["text"]


def test_card_and_form_are_valid_adaptive_cards(card_validator: jsonschema.Draft6Validator) -> None:
    card = Card(title="Idea #4", body=f"by {mention_marker('29:bob')}", fields=(("Votes", "3"), ("Status", "open")),
                sections=(("Comments", "nice"),), footer="footer",
                actions=tuple(Action(f"Button {i}", f"idea vote {i}", "primary" if i == 0 else "default") for i in range(9)))
    form = Form("New idea", "idea new", (FormField("title", "Title", required=True), FormField("details", "Details", "multiline"),
                                         FormField("anon", "Anonymous", "checkbox", value="true"),
                                         FormField("campaign", "Campaign", "select", options=(("c1", "Mobility"), ("c2", "Energy")))))
    out = render(Reply(text="Idea posted", card=card, form=form, attachment=("export.csv", b"a,b\n1,2\n")), NAMES, t_fr)
    (content,) = cards_of(out)
    assert list(card_validator.iter_errors(content)) == []
    assert content["version"] == "1.5"
    submit = content["actions"][0]
    assert submit["data"] == {"command": "idea new"} and submit["type"] == "Action.Submit"
    assert {"command": "idea vote 8"} in [a["data"] for el in content["body"] if el["type"] == "ActionSet" for a in el["actions"]]
    text = plain_text(out)
    assert "@Bob <Léger>" in text and "Votes: 3" in text and "Button 3 idea vote 3" in text and "a,b" in text


def test_huge_french_reply_stays_under_28_kb_with_a_footer(card_validator: jsonschema.Draft6Validator) -> None:
    long = "Élément très détaillé — « citation » " * 400
    card = Card(title="Résumé", body=long, fields=tuple((f"Champ {i}", long[:900]) for i in range(80)),
                sections=tuple((f"Section {i}", long[:2000]) for i in range(40)),
                actions=tuple(Action(f"Action {i}", f"cmd {i}") for i in range(30)))
    out = render(Reply(text=long, card=card), NAMES, t_fr)
    assert size_of(out) <= MAX_BYTES
    (content,) = cards_of(out)
    assert list(card_validator.iter_errors(content)) == []
    assert "raccourci" in json.dumps(content, ensure_ascii=False)


def test_small_reply_is_untouched() -> None:
    out = render(Reply(text="ok"), NAMES, t_fr)
    assert out == {"type": "message", "textFormat": "markdown", "text": "ok"}


# Pacing and retries ------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_keeps_seven_per_second_and_sixty_per_thirty_seconds() -> None:
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    times = []

    async def burst() -> None:
        for _ in range(130):
            await pacer.wait("conv-a")
            times.append(fake.now)

    asyncio.run(burst())
    for i in range(len(times)):
        assert sum(1 for t in times if times[i] <= t < times[i] + 1.0) <= 7
        assert sum(1 for t in times if times[i] <= t < times[i] + 30.0) <= 60
    assert times[6] == 0.0 and times[7] == 1.0 and times[60] >= 30.0
    other = Pacer(clock=fake.clock, sleep=fake.sleep)
    assert other.reserve("conv-b") == fake.now  # conversations are paced independently


class HttpError(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = type("R", (), {"status_code": status, "headers": headers or {}})()


def test_retries_honour_retry_after_then_back_off_with_jitter() -> None:
    fake = FakeTime()
    retrying = Retrying(attempts=5, base=0.5, sleep=fake.sleep, rand=lambda: 0.5)
    outcomes: list[Exception | str] = [HttpError(429, {"Retry-After": "2"}), HttpError(412), HttpError(504), "ok"]

    async def call() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert asyncio.run(retrying.run(call)) == "ok"
    assert fake.slept[0] == pytest.approx(2.025)
    assert fake.slept[1] == pytest.approx(1.0 * 0.75) and fake.slept[2] == pytest.approx(2.0 * 0.75)


def test_other_errors_and_exhausted_retries_are_raised() -> None:
    fake = FakeTime()
    retrying = Retrying(attempts=3, sleep=fake.sleep)

    async def forbidden() -> None:
        raise HttpError(403)

    async def throttled() -> None:
        raise HttpError(502)

    with pytest.raises(HttpError):
        asyncio.run(retrying.run(forbidden))
    assert fake.slept == []
    with pytest.raises(HttpError):
        asyncio.run(retrying.run(throttled))
    assert len(fake.slept) == 2
    assert http_status(HttpError(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))[1] == 0.0


def test_channel_and_tag_mentions_are_not_people() -> None:
    msg = inbound.parse(channel(text="<at>Sales</at> and <at>Designers</at> look", entities=[
        {"type": "mention", "text": "<at>Sales</at>", "mentioned": {"id": "19:c@thread.tacv2", "name": "Sales", "type": "channel"}},
        {"type": "mention", "text": "<at>Designers</at>", "mentioned": {"id": "tag-id", "name": "Designers", "type": "tag"}}])).events[0]
    assert msg.mentions == () and msg.text == "\u27e6#19:c@thread.tacv2\u27e7 and @Designers look"  # type: ignore[union-attr]
