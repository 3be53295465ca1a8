"""Hostile traffic on Teams' `/api/messages`, through the real server and botbuilder's token checks.

Tokens are signed with test RSA keys that a loopback OpenID metadata/JWKS server publishes
(botbuilder's `ChannelValidation.open_id_metadata_endpoint` points at it). That server runs in
its own thread and event loop, like the real one far away: a server that blocks its event loop
while downloading keys (what botbuilder did) then stalls, visibly, instead of deadlocking the test.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterator

import aiohttp
import jwt
import pytest
from aiohttp import web
from botframework.connector.auth import ChannelValidation
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from adapters.server import Outbox, build_app
from adapters.teams import openid
from bot.config import Settings
from bot.core import Bot
from tests.teams_mock import BOT, serve_locally

APP_ID = "00000000-0000-0000-0000-0000000000b0"
SERVICE_URL = "http://127.0.0.1:9/teams/"  # never called: the activities below need no reply
TENANT = "tenant-hostile"
POLICY = openid.Policy(connect_timeout=1.0, read_timeout=2.0, total_timeout=2.0)
PROMPT = 1.0  # seconds: what "answers at once" means on a loaded test machine


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, rsa.RSAPrivateKey]:
    """k1 and k2 belong to the Bot Framework; "forger" to nobody it knows."""
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2", "forger")}


def token(key: rsa.RSAPrivateKey, kid: str, service_url: str = SERVICE_URL) -> str:
    now = int(time.time())
    claims = {"iss": "https://api.botframework.com", "aud": APP_ID, "serviceurl": service_url,
              "nbf": now - 60, "exp": now + 3600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**entry, "kid": kid, "use": "sig", "endorsements": ["msteams"]}


class KeyServer:
    """The Bot Framework's OpenID metadata and JWKS endpoints, on loopback, in their own thread.

    `mode`: "ok" answers, "stall" holds each request until released (10 s at most), "fail" is 500.
    """

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        self.published = dict(keys)
        self.mode = "ok"
        self.metadata_hits = 0
        self.key_hits = 0
        self.url = ""
        self.release = threading.Event()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="key-server", daemon=True)

    def __enter__(self) -> KeyServer:
        self._thread.start()
        assert self._ready.wait(10), "the key server did not start"
        return self

    def __exit__(self, *_: Any) -> None:
        self.release.set()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    @property
    def metadata_url(self) -> str:
        return self.url + "v1/.well-known/openidconfiguration"

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/keys", self._keys)
        runner, self.url = await serve_locally(app)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), 120)
        finally:
            await runner.cleanup()

    async def _hold(self) -> web.Response | None:
        if self.mode == "stall":
            deadline = time.monotonic() + 10
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        if self.mode in ("stall", "fail"):
            return web.json_response({"error": "unavailable"}, status=503 if self.mode == "stall" else 500)
        return None

    async def _metadata(self, _request: web.Request) -> web.Response:
        self.metadata_hits += 1
        return await self._hold() or web.json_response({"issuer": "https://api.botframework.com",
                                                        "jwks_uri": self.url + "v1/keys"})

    async def _keys(self, _request: web.Request) -> web.Response:
        self.key_hits += 1
        return await self._hold() or web.json_response({"keys": [jwk(k, kid) for kid, k in self.published.items()]})


class Clock:
    """Monotonic time the test moves forward (rate limits and key age)."""

    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def keys(signing_keys: dict[str, rsa.RSAPrivateKey], monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyServer]:
    """The key server, with botbuilder's metadata cache as it is before the app is built (restored after)."""
    monkeypatch.setattr(JwtTokenExtractor, "metadataCache", {})
    with KeyServer({"k1": signing_keys["k1"]}) as server:
        monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", server.metadata_url)
        yield server


def key_set(server: KeyServer, clock: Clock) -> openid.KeySet:
    """The KeySet that building the app put in charge of the key server's URL, on `clock` and POLICY."""
    cache = JwtTokenExtractor.metadataCache
    assert isinstance(cache, openid.KeySets), "botbuilder still downloads the signing keys itself"
    found = cache.get(server.metadata_url)
    found.policy, found.now = POLICY, clock
    return found


def configured(settings: Settings) -> Settings:
    return settings.model_copy(update={"teams_app_id": APP_ID, "teams_app_password": "secret", "teams_enabled": False})


def typing(activity_id: str) -> dict[str, Any]:
    """An activity that authenticates fully and needs no answer (so no Bot Connector token)."""
    return {"type": "typing", "id": activity_id, "channelId": "msteams", "serviceUrl": SERVICE_URL,
            "from": {"id": "29:ana", "name": "Ana"}, "recipient": BOT,
            "conversation": {"id": "a:dm-29:ana", "conversationType": "personal", "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}}}


@asynccontextmanager
async def serving(bot: Bot, settings: Settings) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    runner, base = await serve_locally(build_app(bot, configured(settings), Outbox()))  # type: ignore[arg-type]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            yield base, http
    finally:
        await runner.cleanup()


async def post(http: aiohttp.ClientSession, base: str, bearer: str, activity_id: str = "t1") -> tuple[int, float]:
    """Status and seconds taken."""
    started = time.monotonic()
    async with http.post(base + "api/messages", json=typing(activity_id), headers={"Authorization": "Bearer " + bearer}) as resp:
        await resp.read()
        return resp.status, time.monotonic() - started


async def healthz(http: aiohttp.ClientSession, base: str) -> tuple[int, float]:
    started = time.monotonic()
    async with http.get(base + "healthz") as resp:
        await resp.read()
        return resp.status, time.monotonic() - started


def forged(signing_keys: dict[str, rsa.RSAPrivateKey]) -> str:
    """Signed by a key nobody publishes, under a random key id the Bot Framework does not know."""
    return token(signing_keys["forger"], uuid.uuid4().hex)


def test_a_stalled_key_download_delays_nobody_but_the_forger(bot: Bot, settings: Settings, keys: KeyServer,
                                                             signing_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    clock = Clock()
    valid = token(signing_keys["k1"], "k1")
    fake = forged(signing_keys)

    async def run() -> None:
        async with serving(bot, settings) as (base, http):
            key_set(keys, clock)
            assert (await post(http, base, valid, "warm"))[0] == 201  # keys downloaded once
            keys.mode = "stall"
            clock.t += POLICY.min_interval + 1  # the forged key id may start a refresh
            started = time.monotonic()
            forger = asyncio.create_task(post(http, base, fake, "forged"))
            for _ in range(100):  # until its refresh reaches the stalled endpoint
                if keys.metadata_hits == 2:
                    break
                await asyncio.sleep(0.02)
            assert keys.metadata_hits == 2
            health, valid_answer = await healthz(http, base), await post(http, base, valid, "meanwhile")
            assert not forger.done()
            assert health[0] == 200 and health[1] < PROMPT, health
            assert valid_answer[0] == 201 and valid_answer[1] < PROMPT, valid_answer
            status, _ = await forger
            assert status == 401 and time.monotonic() - started < POLICY.total_timeout + PROMPT

    asyncio.run(run())


def test_a_flood_of_unknown_key_ids_costs_one_download(bot: Bot, settings: Settings, keys: KeyServer,
                                                       signing_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    clock = Clock()

    async def flood(http: aiohttp.ClientSession, base: str) -> list[int]:
        answers = await asyncio.gather(*(post(http, base, forged(signing_keys), f"f{i}") for i in range(50)))
        return [status for status, _ in answers]

    async def run() -> None:
        async with serving(bot, settings) as (base, http):
            key_set(keys, clock)
            assert await flood(http, base) == [401] * 50  # cold start: all wait for the same download
            assert (keys.metadata_hits, keys.key_hits) == (1, 1)
            assert (await post(http, base, token(signing_keys["k1"], "k1"), "v1"))[0] == 201
            clock.t += POLICY.min_interval + 1
            assert await flood(http, base) == [401] * 50
            assert (keys.metadata_hits, keys.key_hits) == (2, 2)

    asyncio.run(run())


def test_cached_keys_survive_a_failed_refresh(bot: Bot, settings: Settings, keys: KeyServer,
                                              signing_keys: dict[str, rsa.RSAPrivateKey],
                                              caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    valid = token(signing_keys["k1"], "k1")

    async def run() -> list[tuple[int, float]]:
        async with serving(bot, settings) as (base, http):
            key_set(keys, clock)
            answers = [await post(http, base, valid, "v1")]
            keys.mode = "fail"
            clock.t += POLICY.max_age + 1  # old keys: refreshed in the background, used meanwhile
            answers.append(await post(http, base, valid, "v2"))
            for _ in range(100):
                if not key_set(keys, clock).refreshing:
                    break
                await asyncio.sleep(0.02)
            clock.t += POLICY.min_interval + 1  # an unknown key id may try again: fails too
            answers.append(await post(http, base, forged(signing_keys), "f1"))
            answers.append(await post(http, base, valid, "v3"))
            return answers

    with caplog.at_level(logging.INFO, logger="adapters.teams"):
        answers = asyncio.run(run())
    assert [status for status, _ in answers] == [201, 201, 401, 201]
    assert answers[1][1] < PROMPT and answers[3][1] < PROMPT
    assert keys.metadata_hits == 3
    failures = [r for r in caplog.records if "could not refresh" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info is None for r in failures)
    assert "keeping 1 cached key(s)" in failures[0].getMessage()


def test_a_rotated_key_is_accepted_once_the_rate_limited_refresh_ran(bot: Bot, settings: Settings, keys: KeyServer,
                                                                     signing_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    clock = Clock()
    old, new = token(signing_keys["k1"], "k1"), token(signing_keys["k2"], "k2")

    async def run() -> list[int]:
        async with serving(bot, settings) as (base, http):
            key_set(keys, clock)
            statuses = [(await post(http, base, old, "a1"))[0]]
            keys.published = {"k2": signing_keys["k2"]}  # the Bot Framework rotates: k1 retired, k2 new
            clock.t += 1
            statuses.append((await post(http, base, new, "a2"))[0])  # too soon after the last download
            clock.t += POLICY.min_interval
            statuses.append((await post(http, base, new, "a3"))[0])
            statuses.append((await post(http, base, old, "a4"))[0])  # the retired key is gone with the refresh
            return statuses

    assert asyncio.run(run()) == [201, 401, 201, 401]
    assert keys.metadata_hits == 2


def with_header(token_: str, **fields: Any) -> str:
    """`token_` with header fields pyjwt would refuse to sign (its signature no longer matches)."""
    header, payload, signature = token_.split(".")
    head = {**json.loads(jwt.utils.base64url_decode(header)), **fields}
    return ".".join((jwt.utils.base64url_encode(json.dumps(head).encode()).decode(), payload, signature))


def test_tokens_naming_no_usable_key_id_are_refused_without_a_download(bot: Bot, settings: Settings, keys: KeyServer,
                                                                       signing_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    now = int(time.time())
    claims = {"iss": "https://api.botframework.com", "aud": APP_ID, "serviceurl": SERVICE_URL, "exp": now + 3600}
    signed = jwt.encode(claims, signing_keys["k1"], algorithm="RS256")  # no kid at all
    tokens = [signed, with_header(signed, kid=1), with_header(signed, kid=["k1"]), with_header(signed, kid=""),
              "a.b.c", "not-a-jwt"]

    async def run() -> list[int]:
        async with serving(bot, settings) as (base, http):
            key_set(keys, Clock())
            return [(await post(http, base, t, f"n{i}"))[0] for i, t in enumerate(tokens)]

    assert asyncio.run(run()) == [401] * len(tokens)
    assert keys.metadata_hits == 0


# Malformed bodies ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, chunked, expected", [
    (b"{not json", False, 400),
    (b"[1, 2]", False, 400),
    (b'{"text": "no type", "conversation": {"id": "x"}}', False, 400),
    (b"[" * 100_000 + b"]" * 100_000, False, 400),
    (b'{"type": "message", "text": "' + b"x" * 600_000 + b'", "conversation": {"id": "x"}}', False, 413),
    (b'{"type": "message", "text": "' + b"x" * 600_000 + b'", "conversation": {"id": "x"}}', True, 413),
    (b'{"type": "message", "text": "' + b"x" * 1_100_000 + b'", "conversation": {"id": "x"}}', True, 413),
])
def test_malformed_bodies_get_4xx_and_one_log_line(bot: Bot, settings: Settings, raw: bytes, chunked: bool, expected: int,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    async def run() -> int:
        async with serving(bot, settings) as (base, http):
            data: Any = body() if chunked else raw
            async with http.post(base + "api/messages", data=data, headers={"Content-Type": "application/json"}) as resp:
                return resp.status

    with caplog.at_level(logging.INFO):
        assert asyncio.run(run()) == expected
    teams = [r for r in caplog.records if r.name == "adapters.teams.http"]
    assert len(teams) == 1 and teams[0].exc_info is None, [r.getMessage() for r in teams]
    assert not [r for r in caplog.records if r.name.startswith(("adapters", "aiohttp")) and r.exc_info], "a traceback"
