"""Bot Framework signing keys that never stall the server, whatever a caller sends.

botbuilder checks an inbound token's signature with the keys its `_OpenIdMetadata` downloads
(an OpenID metadata document, then the JWKS it names). It downloads them with `requests.get`,
without a timeout, on the event loop: every day, and whenever a token names a key id it does not
know (at most once an hour). A forged token with a random `kid` thus froze the whole server
for as long as the key endpoint took to answer, health checks included.

`KeySet` takes that object's place (same `get(kid)` contract, installed in botbuilder's
per-URL cache `JwtTokenExtractor.metadataCache` by `install()`):
- a known key id answers at once from the cached keys, even while a refresh is pending or failing;
- downloads run in a thread, each bounded in time (connect, read and a total deadline) and size;
- an unknown key id may start a refresh, at most once per `Policy.min_interval` per URL and
  process (concurrent requests wait for the same one, bounded), so a flood of forged tokens
  costs one download; a key id still unknown afterwards is refused (401);
- a failed refresh keeps the keys the last good one gave; day-old keys are refreshed in the
  background while requests go on with them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    connect_timeout: float = 3.05
    read_timeout: float = 4.0
    total_timeout: float = 5.0       # one refresh (metadata + keys), however slowly the bytes trickle
    min_interval: float = 60.0       # between two refreshes an unknown key id may start
    empty_retry: float = 10.0        # between attempts while no key was ever obtained (startup, outage)
    max_age: float = 24 * 3600.0     # cached keys older than this are refreshed in the background
    max_bytes: int = 1024 * 1024     # a metadata document or JWKS larger than this is refused


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class SigningKey:
    """What botbuilder's JwtTokenExtractor reads from the metadata object's answer."""

    public_key: Any
    endorsements: list[str]


class UnknownSigningKey(PermissionError):
    """The token names a key the Bot Framework does not publish (forged, or from elsewhere)."""


class KeySet:
    """The signing keys published at one OpenID metadata URL (see the module docstring)."""

    def __init__(self, url: str, policy: Policy = DEFAULT_POLICY, *, now: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.policy = policy
        self.now = now  # rate limits and key age (tests move it)
        self.keys: dict[str, SigningKey] = {}
        self.loaded_at: float | None = None  # when the current keys were downloaded
        self.attempted_at: float | None = None
        self._pending: Future[bool] | None = None
        self._lock = threading.Lock()

    @property
    def refreshing(self) -> bool:
        return self._pending is not None and not self._pending.done()

    async def get(self, key_id: Any) -> SigningKey:
        """The key a token's header names (any JSON value: it is unverified), or UnknownSigningKey."""
        if not isinstance(key_id, str) or not key_id:
            raise UnknownSigningKey("Unauthorized. The token names no signing key.")
        key = self.keys.get(key_id)
        if key is not None:
            if self.loaded_at is not None and self.now() - self.loaded_at > self.policy.max_age:
                self.refresh()  # in the background: this request goes on with the cached key
            return key
        pending = self.refresh()
        if pending is not None:
            await asyncio.wait({asyncio.wrap_future(pending)}, timeout=self.policy.total_timeout + 0.5)
        key = self.keys.get(key_id)
        if key is None:
            raise UnknownSigningKey(f"Unauthorized. Unknown signing key {key_id[:64]!r}.")
        return key

    def refresh(self) -> Future[bool] | None:
        """The refresh in flight, a new one if the rate limit allows it, else None."""
        with self._lock:
            if self._pending is not None and not self._pending.done():
                return self._pending
            now = self.now()
            wait = self.policy.min_interval if self.keys else self.policy.empty_retry
            if self.attempted_at is not None and now - self.attempted_at < wait:
                return None
            self.attempted_at = now
            pending: Future[bool] = Future()
            pending.set_running_or_notify_cancel()
            self._pending = pending
        threading.Thread(target=self._run, args=(pending,), name="teams-openid-refresh", daemon=True).start()
        return pending

    def _run(self, pending: Future[bool]) -> None:
        ok = False
        try:
            keys = download_keys(self.url, self.policy)
            if not keys:
                raise ValueError("no usable RSA key")
            self.keys, self.loaded_at, ok = keys, self.now(), True
        except Exception as exc:  # noqa: BLE001 - network, HTTP status, JSON, key parsing: all mean "keep the old keys"
            log.warning("teams: could not refresh the Bot Framework signing keys from %s (%s: %s); "
                        "keeping %d cached key(s)", self.url, type(exc).__name__, str(exc)[:200], len(self.keys))
        finally:
            pending.set_result(ok)


def download_keys(url: str, policy: Policy) -> dict[str, SigningKey]:
    """Blocking (call it from a thread): the metadata document, then the keys it points to."""
    import requests
    from jwt.algorithms import RSAAlgorithm

    deadline = time.monotonic() + policy.total_timeout
    with requests.Session() as session:
        metadata = _get_json(session, url, deadline, policy)
        jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError("the metadata names no jwks_uri")
        jwks = _get_json(session, jwks_uri, deadline, policy)
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the key set has no list of keys")
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("kty") != "RSA":
            continue
        try:
            public_key = RSAAlgorithm.from_jwk(json.dumps(entry))
        except Exception:  # noqa: BLE001 - one malformed key must not discard the others
            log.info("teams: skipped an unreadable signing key %r", entry["kid"][:64])
            continue
        endorsements = entry.get("endorsements")
        keys[entry["kid"]] = SigningKey(public_key, [e for e in endorsements if isinstance(e, str)]
                                        if isinstance(endorsements, list) else [])
    return keys


def _get_json(session: Any, url: str, deadline: float, policy: Policy) -> Any:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("refresh deadline passed")
    timeout = (min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining))
    with session.get(url, timeout=timeout, stream=True) as response:
        response.raise_for_status()
        body = bytearray()
        for chunk in response.iter_content(16384):
            body += chunk
            if len(body) > policy.max_bytes:
                raise ValueError(f"more than {policy.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError("refresh deadline passed")
    return json.loads(bytes(body))


class KeySets(dict):  # type: ignore[type-arg]
    """botbuilder's metadata cache (URL -> metadata object) that hands out KeySets only.

    JwtTokenExtractor looks its metadata object up with `metadataCache.get(url)`; answering
    with a KeySet for every URL covers every validation path (channel, emulator, government,
    skills, configured endpoints) without touching them.
    """

    policy: Policy = DEFAULT_POLICY

    def get(self, url: str, default: Any = None) -> KeySet:  # type: ignore[override]
        found = super().get(url)
        if not isinstance(found, KeySet):
            found = KeySet(url, self.policy)
            self[url] = found
        return found


def install() -> KeySets:
    """Make botbuilder check signatures with KeySets (idempotent, process-wide like its cache)."""
    from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor

    cache = JwtTokenExtractor.metadataCache
    if not isinstance(cache, KeySets):
        cache = KeySets()
        JwtTokenExtractor.metadataCache = cache
    return cache
