"""The Bot Connector clients outlive the turn: one per (app id, service URL, audience), shared by
replies, concurrent turns and proactive sends; the rate-limit handling still applies to them."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from adapters.server import Outbox, build_app
from adapters.teams import turn_key
from adapters.teams.http import ReusedClients, auth_configuration
from bot.config import Settings
from bot.core import Bot
from bot.types import Outbound, Reply, UserRef
from tests.teams_mock import MockConnector, personal_message, serve_locally
from tests.test_teams_http import local, post

TENANT = "tenant-clients"


async def serve(app: Any) -> tuple[web.AppRunner, str]:
    runner, base = await serve_locally(app)
    return runner, base + "api/messages"


def kept(app: Any) -> ReusedClients:
    auth = app[turn_key()].delivery.adapter.bot_framework_authentication
    assert isinstance(auth, ReusedClients)
    return auth


def test_replies_concurrent_turns_and_proactive_sends_share_one_connector_client(bot: Bot, settings: Settings) -> None:
    async def run() -> tuple[MockConnector, list[Any], int]:
        mock = MockConnector()
        service = await mock.start()
        outbox = Outbox()
        app = build_app(bot, local(settings), outbox)
        runner, url = await serve(app)
        try:
            await post(url, personal_message(service, TENANT, "29:ana", "help", "k1"))
            await mock.wait_for(1)  # answered first, processed by the inbox worker after
            first = list(kept(app)._connectors.values())
            statuses = await asyncio.gather(*(post(url, personal_message(service, TENANT, f"29:u{i}", "help", f"k{i + 2}"))
                                              for i in range(8)))
            await mock.wait_for(9)
            await asyncio.to_thread(outbox.send, [Outbound(Reply("Your reminder", key="notifications.test"),
                                                           UserRef("teams", TENANT, "29:ana", "Ana"))])
            await mock.wait_for(10)
            assert all(s in (200, 201) for s in statuses)
            return mock, first, len(kept(app)._connectors) + len(kept(app)._user_tokens)
        finally:
            await runner.cleanup()
            await mock.stop()

    mock, first, count = asyncio.run(run())
    assert len(first) == 1 and count == 2  # one connector client, one user-token client
    assert sorted(c.conversation_id for c in mock.messages()) == sorted(
        ["a:dm-29:ana"] * 2 + [f"a:dm-29:u{i}" for i in range(8)])


def test_each_service_url_gets_its_own_client_and_the_oldest_is_dropped_past_the_bound(bot: Bot, settings: Settings) -> None:
    async def run() -> tuple[list[str], list[str], list[int]]:
        mocks = [MockConnector() for _ in range(3)]
        services = [await m.start() for m in mocks]
        app = build_app(bot, local(settings), Outbox())
        kept(app).max_clients = 2
        runner, url = await serve(app)
        try:
            for i, service in enumerate(services):
                await post(url, personal_message(service, TENANT, "29:ana", "help", f"s{i}"))
                await mocks[i].wait_for(1)
            return services, [key[1] for key in kept(app)._connectors], [len(m.messages()) for m in mocks]
        finally:
            await runner.cleanup()
            for m in mocks:
                await m.stop()

    services, kept_urls, received = asyncio.run(run())
    assert received == [1, 1, 1]
    assert kept_urls == services[1:]


def test_clients_are_kept_per_app_id(settings: Settings) -> None:
    from botframework.connector.auth import ClaimsIdentity

    auth = ReusedClients(auth_configuration(settings))
    made: list[tuple[str, str | None]] = []

    class Factory:
        async def create(self, service_url: str, audience: str | None = None) -> object:
            made.append((service_url, audience))
            return object()

    async def run() -> list[object]:
        return [await auth.connector(Factory(), app, "https://smba.example/", "scope") for app in ("A", "B", "A")]

    first_a, b, second_a = asyncio.run(run())
    assert first_a is second_a and b is not first_a and len(made) == 2
    anonymous = ClaimsIdentity({}, True)
    assert asyncio.run(auth.create_user_token_client(anonymous)) is asyncio.run(auth.create_user_token_client(anonymous))


def test_the_bots_access_token_is_fetched_in_a_thread_never_on_the_event_loop(settings: Settings) -> None:
    """msrest signs each request on the event loop with `get_access_token`, which asks Azure AD
    (a blocking HTTP call) on first use and when the token nears its expiry."""
    import threading
    import time
    from types import SimpleNamespace

    import jwt
    from botframework.connector.auth import MicrosoftAppCredentials

    from adapters.teams.http import TOKEN_MARGIN

    fetched_in: list[threading.Thread] = []

    class AzureAd(MicrosoftAppCredentials):
        def get_access_token(self, force_refresh: bool = False) -> str:
            fetched_in.append(threading.current_thread())
            time.sleep(0.05)  # the round trip to Azure AD
            return jwt.encode({"exp": int(time.time() + 3600), "n": len(fetched_in)}, "a-test-signing-secret-of-32-bytes!", algorithm="HS256")

    credentials = AzureAd("00000000-0000-0000-0000-000000000001", "secret")
    client = SimpleNamespace(config=SimpleNamespace(credentials=credentials))
    auth = ReusedClients(auth_configuration(settings))

    class Factory:
        async def create(self, service_url: str, audience: str | None = None) -> object:
            return client

    async def run() -> tuple[threading.Thread, list[str]]:
        headers = []
        for _ in range(2):  # the first send fetches; the second finds the token fresh
            await auth.connector(Factory(), "A", "https://smba.example/", None)
            headers.append(credentials.signed_session().headers["Authorization"])  # as msrest does, on the loop
        prefetched = vars(credentials)["get_access_token"]
        prefetched.expires_at = time.time() + TOKEN_MARGIN / 2  # nearing its expiry: renewed
        await auth.connector(Factory(), "A", "https://smba.example/", None)
        headers.append(credentials.signed_session().headers["Authorization"])
        return threading.current_thread(), headers

    loop_thread, headers = asyncio.run(run())
    assert len(fetched_in) == 2 and all(t is not loop_thread for t in fetched_in)
    numbers = [jwt.decode(h.removeprefix("Bearer "), options={"verify_signature": False})["n"] for h in headers]
    assert numbers == [1, 1, 2]
