"""Full HTTP round trips: the real aiohttp server (adapters/server.py) receives Teams activities
whose serviceUrl points at a loopback mock Bot Connector that records what the bot sends."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, AsyncIterator

import aiohttp
import jsonschema
import pytest
from sqlalchemy import select

from adapters.server import Outbox, build_app
from adapters.teams.render import cards_of
from bot.clock import FixedClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from bot.types import ConversationRef, FetchHistory, Outbound, ProfileUpdate, Reply, UserRef
from handlers import build_registry
from store.db import Database
from store.models.core import Conversation, Person, PostedMessage
from store.models.teams import TeamsReference
from tests.conftest import spec_file
from tests.teams_mock import MockConnector, bot_added_to_team, channel_message, personal_message, serve_locally

TENANT = "tenant-http"


@pytest.fixture(scope="module")
def card_schema() -> Any:
    return json.loads(spec_file("adaptive-card-1.5.json").read_text())


def assert_cards_valid(schema: Any, bodies: list[Any]) -> int:
    validator = jsonschema.Draft6Validator(schema)
    count = 0
    for body in bodies:
        for card in cards_of(body):
            errors = sorted(validator.iter_errors(card), key=lambda e: list(e.path))
            assert not errors, f"invalid Adaptive Card: {errors[0].message} at {list(errors[0].path)}"
            count += 1
    return count


_SERVED: dict[str, Any] = {}  # url → app, for `drained`


@asynccontextmanager
async def serving(bot: Bot, settings: Settings) -> AsyncIterator[tuple[str, Outbox]]:
    outbox = Outbox()
    app = build_app(bot, settings, outbox)
    runner, base = await serve_locally(app)  # type: ignore[arg-type]
    _SERVED[base + "api/messages"] = app
    try:
        yield base + "api/messages", outbox
    finally:
        _SERVED.pop(base + "api/messages", None)
        await runner.cleanup()


async def drained(url: str) -> None:
    """Every activity answered so far was processed (the answer comes before the work: the inbox)."""
    from adapters.teams import inbox_key

    await _SERVED[url][inbox_key()].drain(timeout=20)


async def post(url: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> int:
    async with aiohttp.ClientSession() as http:
        data = raw if raw is not None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        async with http.post(url, data=data, headers=hdrs) as resp:
            await resp.read()
            return resp.status


def local(settings: Settings) -> Settings:
    return settings.model_copy(update={"teams_enabled": True, "teams_app_id": "", "teams_app_password": ""})


def test_personal_help_round_trip_with_valid_cards(bot: Bot, settings: Settings, card_schema: Any) -> None:
    async def run() -> None:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                status = await post(url, personal_message(service, TENANT, "29:ana", "help", "m1", "Ana"))
                assert status in (200, 201)
                calls = await mock.wait_for(1)
                assert calls[0].kind == "reply" and calls[0].conversation_id == "a:dm-29:ana"
                assert calls[0].activity_id == "m1"
                assert assert_cards_valid(card_schema, [c.body for c in calls]) == 1
                assert "help" in json.dumps(calls[0].body).casefold()
        finally:
            await mock.stop()

    asyncio.run(run())
    with bot.services.db.session(TENANT) as s:
        row = s.scalar(select(TeamsReference).where(TeamsReference.conversation_id == "a:dm-29:ana"))
        assert row is not None and row.kind == "dm" and row.user_id == "29:ana" and row.service_url.startswith("http://127.0.0.1")


def test_private_reply_in_channel_goes_to_personal_chat_with_public_ack(bot: Bot, settings: Settings, card_schema: Any) -> None:
    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                await post(url, channel_message(service, TENANT, "29:ben", "19:chan@thread.tacv2", "help", "c1", name="Ben"))
                await mock.wait_for(2)
                await asyncio.sleep(0.05)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    kinds = [c.kind for c in mock.calls]
    assert kinds == ["create", "reply", "reply"], kinds  # the DM answers the created conversation's first activity
    create, dm, ack = mock.calls
    assert create.body["members"][0]["id"] == "29:ben" and create.body["tenantID"] == TENANT
    assert dm.conversation_id == "a:personal-29:ben" and cards_of(dm.body)
    assert ack.conversation_id.startswith("19:chan@thread.tacv2") and not cards_of(ack.body)
    assert ack.body["text"].startswith("<at>Ben</at>")
    assert ack.body["entities"] == [{"type": "mention", "text": "<at>Ben</at>", "mentioned": {"id": "29:ben", "name": "Ben"}}]
    assert_cards_valid(card_schema, [c.body for c in mock.messages()])
    with bot.services.db.session(TENANT) as s:  # the new personal chat is remembered for next time
        assert s.scalar(select(TeamsReference.conversation_id).where(TeamsReference.user_id == "29:ben")) == "a:personal-29:ben"


def test_ambient_channel_message_is_indexed_silently_and_retries_are_deduplicated(bot: Bot, settings: Settings) -> None:
    seen: list[Any] = []
    original = bot.handle
    bot.handle = lambda event, **kw: seen.append(event) or original(event, **kw)  # type: ignore[method-assign]

    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                ambient = channel_message(service, TENANT, "29:ana", "19:chan@thread.tacv2", "merci pour le #kubernetes", "a1",
                                          mention_bot=False)
                assert await post(url, ambient) in (200, 201)
                assert await post(url, ambient) in (200, 201)  # Teams retried the same activity
                await post(url, personal_message(service, TENANT, "29:ana", "help", "a2"))
                await mock.wait_for(1)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    assert len(mock.messages()) == 1
    messages = [e for e in seen if getattr(e, "id", None) == "a1"]
    assert len(messages) == 1 and messages[0].addressed is False and messages[0].text == "merci pour le #kubernetes"


@pytest.mark.parametrize("headers, raw, expected", [
    ({"Content-Type": "text/plain"}, b"hello", 415),
    ({}, b"{not json", 400),
    ({}, b"[1, 2]", 400),
    ({}, b'{"text": "no type"}', 400),
    ({}, b'{"type": "message"}', 400),
    ({}, b'{"type": ["message"], "conversation": {"id": "x"}}', 400),
    ({}, b'{"type": "message", "timestamp": "yesterday", "conversation": {"id": "x"}}', 400),
    ({}, b'\xff\xfe', 400),
])
def test_malformed_requests_get_4xx(bot: Bot, settings: Settings, headers: dict[str, str], raw: bytes, expected: int) -> None:
    async def run() -> int:
        async with serving(bot, local(settings)) as (url, _):
            async with aiohttp.ClientSession() as http:
                async with http.post(url, data=raw, headers={"Content-Type": "application/json", **headers}) as resp:
                    return resp.status

    assert asyncio.run(run()) == expected


def test_unauthenticated_requests_get_401_when_an_app_id_is_configured(bot: Bot, settings: Settings) -> None:
    configured = settings.model_copy(update={"teams_app_id": "00000000-0000-0000-0000-000000000001",
                                             "teams_app_password": "secret", "teams_enabled": False})

    async def run() -> list[int]:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, configured) as (url, _):
                body = personal_message(service, TENANT, "29:ana", "help", "u1")
                codes = [await post(url, body), await post(url, body, {"Authorization": "Bearer not-a-jwt"}),
                         await post(url, body, {"Authorization": "Basic abc"})]
        finally:
            await mock.stop()
        assert mock.calls == []
        return codes

    assert asyncio.run(run()) == [401, 401, 401]


def test_install_stores_reference_syncs_paged_roster_and_welcomes(bot: Bot, settings: Settings) -> None:
    events: list[Any] = []
    original = bot.handle
    bot.handle = lambda event, **kw: events.append(event) or original(event, **kw)  # type: ignore[method-assign]
    team = "19:team@thread.tacv2"

    async def run() -> MockConnector:
        mock = MockConnector(roster=[{"id": f"29:p{i}", "name": f"Person {i}", "email": f"p{i}@example.org",
                                      "userPrincipalName": f"p{i}@example.org", "tenantId": TENANT} for i in range(5)])
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                assert await post(url, bot_added_to_team(service, TENANT, team, "i1")) in (200, 201)
                await mock.wait_for(1)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    assert [c.kind for c in mock.calls if c.kind == "members"] == ["members"]  # 5 members fit one page of 200
    profiles = [e for e in events if isinstance(e, ProfileUpdate)]
    assert [p.email for p in profiles] == [f"p{i}@example.org" for i in range(5)]
    assert all(p.user.tenant == TENANT for p in profiles)
    assert mock.messages()[0].body["text"].startswith("Hello")  # the core's greeting, or the adapter's when it has none
    with bot.services.db.session(TENANT) as s:
        row = s.scalar(select(TeamsReference).where(TeamsReference.conversation_id == team))
        assert row is not None and row.kind == "public" and json.loads(row.reference)["conversation"]["id"] == team
        person = s.scalar(select(Person).where(Person.external_id == "29:p3"))
        assert person is not None and (person.display_name, person.email) == ("Person 3", "p3@example.org")
        conv = s.scalar(select(Conversation).where(Conversation.external_id == team))
        assert conv is not None and conv.bot_member and conv.member_count == 5


def test_roster_paging_follows_continuation_tokens(bot: Bot, settings: Settings) -> None:
    from adapters.teams.turn import TeamsTurn

    events: list[Any] = []
    original = bot.handle
    bot.handle = lambda event, **kw: events.append(event) or original(event, **kw)  # type: ignore[method-assign]
    original_init = TeamsTurn.__init__

    def small_pages(self: TeamsTurn, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **{**kwargs, "page_size": 2})

    TeamsTurn.__init__ = small_pages  # type: ignore[method-assign]
    try:
        async def run() -> MockConnector:
            mock = MockConnector(roster=[{"id": f"29:q{i}", "name": f"Q {i}", "email": f"q{i}@example.org"} for i in range(5)])
            service = await mock.start()
            try:
                async with serving(bot, local(settings)) as (url, _):
                    await post(url, bot_added_to_team(service, TENANT, "19:t2@thread.tacv2", "i2"))
                    await mock.wait_for(1)
            finally:
                await mock.stop()
            return mock

        mock = asyncio.run(run())
    finally:
        TeamsTurn.__init__ = original_init  # type: ignore[method-assign]
    pages = [c.body for c in mock.calls if c.kind == "members"]
    assert [p.get("continuationToken") for p in pages] == [None, "2", "4"]
    assert len([e for e in events if isinstance(e, ProfileUpdate)]) == 5


def test_proactive_delivery_from_stored_reference_after_restart(settings: Settings, clock: FixedClock, prompts: Prompts) -> None:
    def fresh_bot() -> Bot:
        return Bot(Services(settings=settings, db=Database(settings.database_url), prompts=prompts, clock=clock,
                            registry=build_registry()))

    async def first_life(mock: MockConnector, service: str) -> None:
        bot = fresh_bot()
        async with serving(bot, local(settings)) as (url, _):
            await post(url, bot_added_to_team(service, TENANT, "19:team@thread.tacv2", "r1"))
            await post(url, personal_message(service, TENANT, "29:ana", "help", "r2"))
            await mock.wait_for(2)
        bot.services.db.dispose()

    async def second_life(mock: MockConnector) -> None:
        bot = fresh_bot()  # new Bot, new Database objects: only the database file remembers
        before = len(mock.messages())
        async with serving(bot, local(settings)) as (url, outbox):
            channel = ConversationRef("teams", TENANT, "19:team@thread.tacv2", "public")
            person = UserRef("teams", TENANT, "29:ana", "Ana")
            effects = [Outbound(Reply("Weekly digest", key="digest.test"), channel, anchor="digest:1"),
                       Outbound(Reply("Your reminder", key="notifications.test"), person),
                       Outbound(Reply("Weekly digest, updated", key="digest.test"), channel, anchor="digest:1")]
            await asyncio.to_thread(outbox.send, effects)  # as the scheduler thread does
            await mock.wait_for(before + 3)
        bot.services.db.dispose()

    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            await first_life(mock, service)
            await second_life(mock)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    digest, reminder, update = mock.messages()[-3:]
    assert digest.kind in ("send", "reply") and digest.conversation_id == "19:team@thread.tacv2"
    assert reminder.kind in ("send", "reply") and reminder.conversation_id == "a:dm-29:ana"
    assert (update.kind, update.activity_id, update.body["text"]) == ("update", digest_id(mock, digest), "Weekly digest, updated")
    db = Database(settings.database_url)
    with db.session(TENANT) as s:
        assert s.scalar(select(PostedMessage.message_ref).where(PostedMessage.anchor == "digest:1")) == update.activity_id
    db.dispose()


def digest_id(mock: MockConnector, call: Any) -> str:
    return f"msg-{[c for c in mock.calls if c.kind in ('reply', 'send')].index(call) + 1}"


def test_missing_reference_logs_a_hint_and_history_is_explained(bot: Bot, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, outbox):
                await post(url, personal_message(service, TENANT, "29:ana", "help", "h1"))
                await mock.wait_for(1)
                unknown = ConversationRef("teams", TENANT, "19:never-seen@thread.tacv2", "public")
                await asyncio.to_thread(outbox.send, [Outbound(Reply("hello", key="x"), unknown)])
                await asyncio.to_thread(outbox.send, [FetchHistory(unknown, since=bot.services.clock.now(),
                                                                   requested_by=UserRef("teams", TENANT, "29:ana", "Ana"))])
                await mock.wait_for(2)
        finally:
            await mock.stop()
        return mock

    with caplog.at_level(logging.WARNING, logger="adapters.teams"):
        mock = asyncio.run(run())
    assert any("no stored conversation reference" in r.getMessage() and "Hint" in r.getMessage() for r in caplog.records)
    history = mock.messages()[-1]
    assert history.conversation_id == "a:dm-29:ana" and "Microsoft Graph" in history.body["text"]


def test_rate_limited_send_is_retried_after_retry_after(bot: Bot, settings: Settings) -> None:
    async def run() -> tuple[MockConnector, float]:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                mock.fail_next(429, retry_after=0.3)
                mock.fail_next(502)
                started = time.monotonic()
                await post(url, personal_message(service, TENANT, "29:ana", "help", "t1"))
                await mock.wait_for(1)
                elapsed = time.monotonic() - started
        finally:
            await mock.stop()
        return mock, elapsed

    mock, elapsed = asyncio.run(run())
    assert mock.attempts == 3 and len(mock.messages()) == 1
    assert elapsed >= 0.3


def test_card_buttons_come_back_as_commands(bot: Bot, settings: Settings) -> None:
    events: list[Any] = []
    original = bot.handle
    bot.handle = lambda event, **kw: events.append(event) or original(event, **kw)  # type: ignore[method-assign]

    async def run() -> None:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                click = personal_message(service, TENANT, "29:ana", "", "b1")
                click["value"] = {"command": "help"}
                form = personal_message(service, TENANT, "29:ana", "", "b2")
                form["value"] = {"command": "lang", "choice": "fr", "notify": True}
                await post(url, click)
                await post(url, form)
                await mock.wait_for(2)
        finally:
            await mock.stop()

    asyncio.run(run())
    click, form = sorted((e for e in events if getattr(e, "id", "") in ("b1", "b2")), key=lambda e: e.id)
    assert (click.text, click.via, click.addressed, click.form_values) == ("help", "button", True, None)
    assert (form.text, form.via, form.form_values) == ("lang", "form", {"choice": "fr", "notify": "true"})


def test_a_private_channel_stays_private_when_teams_does_not_say(bot: Bot, settings: Settings) -> None:
    events: list[Any] = []
    original = bot.handle
    bot.handle = lambda event, **kw: events.append(event) or original(event, **kw)  # type: ignore[method-assign]
    secret = "19:secret@thread.tacv2"

    async def run() -> None:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                first = channel_message(service, TENANT, "29:ana", secret, "#budget 2027", "p1", mention_bot=False)
                first["channelData"]["channel"]["membershipType"] = "private"
                later = channel_message(service, TENANT, "29:ana", secret, "#budget again", "p2", mention_bot=False)
                assert await post(url, first) in (200, 201)
                assert await post(url, later) in (200, 201)
        finally:
            await mock.stop()

    asyncio.run(run())
    kinds = [e.conversation.kind for e in events if getattr(e, "id", "") in ("p1", "p2")]
    assert kinds == ["private", "private"]


def test_private_answer_that_cannot_be_delivered_is_announced_in_the_channel(bot: Bot, settings: Settings) -> None:
    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                mock.fail_next(403)  # the tenant forbids the bot to open personal chats
                await post(url, channel_message(service, TENANT, "29:ben", "19:chan@thread.tacv2", "help", "f1", name="Ben"))
                await mock.wait_for(1)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    (ack,) = mock.messages()
    assert ack.conversation_id.startswith("19:chan@thread.tacv2") and "personal chat" in ack.body["text"]
    assert "could not reach you" in ack.body["text"] and not cards_of(ack.body)


def test_removing_the_app_retires_the_reference(bot: Bot, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    team = "19:gone@thread.tacv2"

    async def run() -> MockConnector:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, outbox):
                await post(url, bot_added_to_team(service, TENANT, team, "g1"))
                await mock.wait_for(1)
                await asyncio.sleep(0.05)
                welcomed = len(mock.messages())
                removed = bot_added_to_team(service, TENANT, team, "g2")
                removed["membersRemoved"], removed["membersAdded"] = removed.pop("membersAdded"), []
                removed["channelData"]["eventType"] = "teamMemberRemoved"
                assert await post(url, removed) in (200, 201)
                await drained(url)
                await asyncio.to_thread(outbox.send, [Outbound(Reply("digest", key="x"), ConversationRef("teams", TENANT, team, "public"))])
                assert len(mock.messages()) == welcomed  # nothing posted after the removal
        finally:
            await mock.stop()
        return mock

    with caplog.at_level(logging.WARNING, logger="adapters.teams"):
        asyncio.run(run())
    assert any("no stored conversation reference" in r.getMessage() for r in caplog.records)
    with bot.services.db.session(TENANT) as s:
        assert s.scalar(select(TeamsReference.installed).where(TeamsReference.conversation_id == team)) is False


def test_personal_install_stores_the_personal_chat_and_says_hello(bot: Bot, settings: Settings) -> None:
    async def run() -> MockConnector:
        mock = MockConnector(roster=[{"id": "29:zoe", "name": "Zoé", "email": "zoe@example.org"}])
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                install = personal_message(service, TENANT, "29:zoe", "", "pi1", "Zoé")
                install.update(type="installationUpdate", action="add")
                del install["text"]
                assert await post(url, install) in (200, 201)
                await mock.wait_for(1)
        finally:
            await mock.stop()
        return mock

    mock = asyncio.run(run())
    hello = mock.messages()[0]
    assert hello.conversation_id == "a:dm-29:zoe" and hello.body["text"]
    with bot.services.db.session(TENANT) as s:
        row = s.scalar(select(TeamsReference).where(TeamsReference.user_id == "29:zoe"))
        assert row is not None and row.kind == "dm" and row.installed
        assert s.scalar(select(Person.email).where(Person.external_id == "29:zoe")) == "zoe@example.org"


def test_an_app_id_without_its_secret_is_refused_at_start(bot: Bot, settings: Settings) -> None:
    broken = settings.model_copy(update={"teams_app_id": "00000000-0000-0000-0000-000000000001", "teams_app_password": ""})
    with pytest.raises(ValueError, match="MicrosoftAppPassword"):
        build_app(bot, broken, Outbox())


class _Killed(BaseException):
    """The process died here (not an Exception: nothing on the way catches it)."""


def test_a_proactive_send_retried_after_a_crash_updates_the_activity_it_sent(bot: Bot, settings: Settings,
                                                                            clock: FixedClock) -> None:
    """Under the outbox, the Bot Connector took the message and answered its id; the process died
    before the row was marked sent. The sweeper's retry updates that activity: no second message."""
    from bot import outbox as durable_outbox
    from store import outbox as outbox_store
    from store.db import ALL_TENANTS

    channel = ConversationRef("teams", TENANT, "19:team@thread.tacv2", "public")
    effect = Outbound(Reply("Weekly digest", key="digest.test"), channel)

    async def run() -> tuple[MockConnector, int]:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, outbox):
                await post(url, bot_added_to_team(service, TENANT, "19:team@thread.tacv2", "r1"))
                await drained(url)
                before = len(mock.messages())  # the welcome

                def send_then_die(items: Any) -> None:
                    outbox.send(items)
                    raise _Killed()

                def record_and_die() -> None:
                    with bot.services.db.session(ALL_TENANTS) as s:
                        leased = durable_outbox.record(s, [effect], clock.now(), token=durable_outbox.new_token("dying"))
                    assert leased is not None
                    with pytest.raises(_Killed):
                        durable_outbox.deliver(bot.services.db, clock, leased, send_then_die, [effect])

                await asyncio.to_thread(record_and_die)
                clock.advance(outbox_store.LEASE + timedelta(seconds=1))
                assert await asyncio.to_thread(durable_outbox.sweep, bot.services.db, clock, outbox.send) == []
                await mock.wait_for(before + 2)
                assert outbox_store.pending_count(bot.services.db) == 0
        finally:
            await mock.stop()
        return mock, before

    mock, before = asyncio.run(run())
    sent, again = mock.messages()[before:]
    assert sent.kind in ("send", "reply") and sent.conversation_id == "19:team@thread.tacv2"
    assert (again.kind, again.activity_id, again.body["text"]) == ("update", digest_id(mock, sent), "Weekly digest")
