"""The `/api/messages` endpoint: a strict front door, botbuilder's token check, then the inbox.

Malformed requests get 400/413/415 with one log line, missing or invalid tokens 401 (when an
app id is configured; signing keys come from adapters/teams/openid.py, never downloaded on the
event loop). An authenticated activity is written to the durable inbox before it is answered
(201; 503 when it cannot be written in time, see adapters/teams/inbox.py); its turn runs later
under botbuilder's CloudAdapter, built by `build_adapter`.

The bot's outgoing access token (client credentials from Azure AD) is fetched in a thread
when a connector client is handed out (`ReusedClients.connector`), never by msrest on the
event loop when a request is signed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from botbuilder.core import Middleware, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from urllib3.util.retry import Retry

from adapters.teams import inbound, openid
from adapters.teams.settings import TeamsSettings

log = logging.getLogger(__name__)
MAX_BODY = 512 * 1024
TOKEN_MARGIN = 600.0      # seconds: a token closer than this to its expiry is renewed (in a thread)
TOKEN_UNKNOWN_LIFE = 1800.0  # the assumed life of a token whose expiry cannot be read


class OwnRetries(Middleware):
    """The connector's HTTP client retries 429/5xx on its own, blocking a thread; retries
    are ours (paced, with jitter), so its policy is switched off for every turn."""

    async def on_turn(self, context: TurnContext, logic: Any) -> None:
        disable_sdk_retries(context.turn_state.get(context.adapter.BOT_CONNECTOR_CLIENT_KEY))
        await logic()


def disable_sdk_retries(client: Any) -> None:
    policy = getattr(getattr(client, "config", None), "retry_policy", None)
    if policy is not None:
        policy.policy = Retry(total=0, connect=0, read=0, status=0, redirect=0, raise_on_status=False,
                              respect_retry_after_header=False, status_forcelist=None)


def auth_configuration(settings: TeamsSettings) -> SimpleNamespace:
    """What ConfigurationBotFrameworkAuthentication reads: single-tenant when a tenant id is set."""
    return SimpleNamespace(
        APP_ID=settings.teams_app_id,
        APP_PASSWORD=settings.teams_app_password,
        APP_TYPE="SingleTenant" if settings.teams_app_tenant_id and settings.teams_app_id else "MultiTenant",
        APP_TENANTID=settings.teams_app_tenant_id,
    )


class ReusedClients(ConfigurationBotFrameworkAuthentication):
    """Bot Framework authentication whose connector and user-token clients outlive the turn.

    CloudAdapter builds both clients for every activity. Each build configures msrest from
    scratch (3.6 ms measured: its retry policy derives a status list in quadratic time) and comes
    with a new HTTP session, hence a new connection to the Bot Connector for every reply.
    botbuilder's previous BotFrameworkAdapter kept one connector client per (app id, service
    URL, scope) the same way; the credentials inside refresh their own token, so a kept client
    stays valid. The clients hold no per-turn state; CloudAdapter still builds each turn's context.

    Token signatures are checked with `openid.KeySet`s instead of botbuilder's key download,
    which ran on the event loop without a timeout (see adapters/teams/openid.py).
    """

    def __init__(self, configuration: Any, *, max_clients: int = 64) -> None:
        super().__init__(configuration)
        openid.install()
        self.max_clients = max_clients
        self._connectors: dict[tuple[str, str, str], ConnectorClient] = {}
        self._user_tokens: dict[str, UserTokenClient] = {}

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await super().authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _KeptConnectors(self, result.connector_factory, app_id_of(result.claims_identity))
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _KeptConnectors(self, super().create_connector_factory(claims_identity), app_id_of(claims_identity))

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = app_id_of(claims_identity)
        client = self._user_tokens.get(app_id)
        if client is None:
            client = await super().create_user_token_client(claims_identity)
            self._keep(self._user_tokens, app_id, client)
        return client

    async def connector(self, factory: ConnectorFactory, app_id: str, service_url: str, audience: str | None) -> ConnectorClient:
        """The kept client, its access token fetched (first use, renewal) in a thread."""
        key = (app_id, service_url or "", audience or self.get_originating_audience())  # None: the channel scope
        client = self._connectors.get(key)
        if client is None:
            client = await factory.create(service_url, audience)
            self._keep(self._connectors, key, client)
        await token_ready(getattr(getattr(client, "config", None), "credentials", None))
        return client

    def _keep(self, kept: dict[Any, Any], key: Any, client: Any) -> None:
        """Bounded: a few service URLs and one app id in practice; the oldest goes first."""
        if len(kept) >= self.max_clients:
            kept.pop(next(iter(kept)))
        kept[key] = client


class PrefetchedToken:
    """Takes the place of an AppCredentials' `get_access_token`, which msrest calls
    synchronously, on the event loop, to sign every request (MSAL's ConfidentialClientApplication:
    an authority discovery and a token request to Azure AD on first use, a new token request when
    the cached one nears its expiry). `fetch` runs in a thread (`token_ready`); signing then
    reads the token fetched there."""

    def __init__(self, fetch: Any) -> None:
        self.fetch = fetch
        self.token = ""
        self.expires_at = 0.0

    def __call__(self, force_refresh: bool = False) -> str:
        if self.token and not force_refresh and time.time() < self.expires_at:
            return self.token
        return self.renew()  # not prefetched (a client used without `token_ready`): blocking, as botbuilder did

    def renew(self) -> str:
        token = self.fetch()
        self.token, self.expires_at = token, time.time() + token_life(token)
        return token

    @property
    def fresh(self) -> bool:
        return bool(self.token) and time.time() < self.expires_at - TOKEN_MARGIN


def token_life(token: str) -> float:
    """Seconds left before an Azure AD access token (a JWT) expires; an assumed life when unreadable."""
    import jwt

    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except Exception:  # noqa: BLE001 - not a JWT: use the assumed life
        exp = None
    return float(exp) - time.time() if isinstance(exp, (int, float)) else TOKEN_UNKNOWN_LIFE


async def token_ready(credentials: Any) -> None:
    """Make sure `credentials` hold a token good for the next minutes, fetched in a thread.
    Anonymous credentials (no app id: local tests, the Emulator) sign nothing."""
    app_id = getattr(credentials, "microsoft_app_id", None)
    if not app_id or app_id == AuthenticationConstants.ANONYMOUS_SKILL_APP_ID:
        return
    prefetched = vars(credentials).get("get_access_token")
    if not isinstance(prefetched, PrefetchedToken):
        prefetched = PrefetchedToken(credentials.get_access_token)
        credentials.get_access_token = prefetched
    if not prefetched.fresh:
        await asyncio.to_thread(prefetched.renew)


class _KeptConnectors(ConnectorFactory):
    def __init__(self, owner: ReusedClients, inner: ConnectorFactory, app_id: str) -> None:
        self.owner = owner
        self.inner = inner
        self.app_id = app_id

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        return await self.owner.connector(self.inner, self.app_id, service_url, audience)


def app_id_of(claims_identity: ClaimsIdentity | None) -> str:
    """The bot app id a request was addressed to, as botbuilder reads it ("" when unauthenticated)."""
    if claims_identity is None:
        return ""
    return str(claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
               or claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM) or "")


def build_adapter(settings: TeamsSettings) -> CloudAdapter:
    if settings.teams_openid_metadata_url:  # botbuilder reads it from this class attribute, process-wide
        from botframework.connector.auth import ChannelValidation

        ChannelValidation.open_id_metadata_endpoint = settings.teams_openid_metadata_url
    adapter = CloudAdapter(ReusedClients(auth_configuration(settings)))
    adapter.use(OwnRetries())

    async def on_error(context: TurnContext, error: Exception) -> None:
        log.error("teams: turn failed on a %s activity", getattr(context.activity, "type", "?"), exc_info=error)

    adapter.on_turn_error = on_error
    return adapter


def malformed(why: str) -> web.Response:
    log.info("teams: malformed activity (%s)", why)
    return web.json_response({"error": "malformed activity"}, status=400)


def too_large(size: int | None) -> web.Response:
    log.info("teams: activity too large (%s)", f"{size} bytes" if size is not None else "past the server's body limit")
    return web.json_response({"error": "activity too large"}, status=413)


def handler(adapter: CloudAdapter, accept: Any, written: Any) -> Any:
    """`accept(body, auth) -> status` writes an authenticated activity to the inbox;
    `written()` runs once the answer went out (wakes the inbox worker)."""

    async def messages(request: web.Request) -> web.StreamResponse:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected application/json"}, status=415)
        if (request.content_length or 0) > MAX_BODY:
            return too_large(request.content_length)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked, past the app's client_max_size
            return too_large(None)
        if len(raw) > MAX_BODY:  # chunked bodies announce no length
            return too_large(len(raw))
        try:
            body = json.loads(raw)
            activity = Activity().deserialize(body) if isinstance(body, dict) else None
        except Exception as exc:  # noqa: BLE001 - json and msrest raise several kinds; all mean a bad request
            return malformed(f"{type(exc).__name__}: {str(exc)[:200]}")
        if activity is None:
            return malformed(f"a JSON {type(body).__name__}, not an object")
        if not isinstance(body.get("type"), str) or not body["type"] or not isinstance(body.get("conversation"), dict):
            return malformed("no type or no conversation")
        header = request.headers.get("Authorization", "")
        try:
            auth = await adapter.bot_framework_authentication.authenticate_request(activity, header)
        except Exception as exc:  # noqa: BLE001 - PermissionError, bad JWTs, unreachable key endpoints
            log.warning("teams: unauthorized request (%s: %s)", type(exc).__name__, str(exc)[:200])
            return web.json_response({"error": "unauthorized"}, status=401)
        action = body["type"] == "invoke" and inbound.message_action(body) is not None
        if body["type"] == "invoke" and not action:  # only message actions have an effect (adapters/teams/inbox.py)
            return web.json_response(data=None, status=501)
        status = await accept(body, auth)
        if status >= 500:
            return web.json_response({"error": "try again"}, status=status)
        # A message action's dialog closes on an empty 200; the answer comes as a message.
        response = web.json_response({}, status=200) if action else web.Response(status=status)
        await response.prepare(request)  # the answer goes out first; only then may a worker start
        await response.write_eof()
        written()
        return response

    return messages
