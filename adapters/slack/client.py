"""Calling Slack's Web API: clients with retries, per-team tokens, pacing, error hints.

Imported only when Slack is configured (it imports slack_sdk).
"""
from __future__ import annotations

import http.client
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.metrics import report_api_error

log = logging.getLogger("adapters.slack")

# Errors a person can fix, with the prompt that tells them how.
HINTS = {
    "not_in_channel": "slack.hint_not_in_channel",
    "channel_not_found": "slack.hint_channel_not_found",
    "missing_scope": "slack.hint_missing_scope",
    "is_archived": "slack.hint_is_archived",
}


# Error codes Slack answers (sometimes with HTTP 200) for a failure on its side: worth a retry.
TRANSIENT_CODES = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def with_retries(client: Any) -> Any:
    """429 (honouring Retry-After) and 500/503 are retried; connection errors already are.
    What is still failing after these retries is the caller's to retry later (`transient`)."""
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=2))
    return client


def make_client(token: str | None, base_url: str, timeout: int = 10) -> WebClient:
    return with_retries(WebClient(token=token or None, base_url=_slash(base_url), timeout=timeout))


def make_single_shot(token: str | None, base_url: str, timeout: int = 10) -> WebClient:
    """A client for a call that must not be repeated blindly (files.completeUploadExternal
    shares the file again each time): only 429s are retried (Slack did nothing); a 5xx or a
    connection dropped after the request was sent leaves the outcome unknown, which the
    caller settles by asking Slack before trying again."""
    return WebClient(token=token or None, base_url=_slash(base_url), timeout=timeout,
                     retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])


def make_webhook(url: str, timeout: int = 10) -> WebhookClient:
    return with_retries(WebhookClient(url, timeout=timeout))


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def error_code(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        try:
            return str(exc.response.get("error") or "")
        except Exception:  # noqa: BLE001
            return ""
    return ""


def transient(exc: BaseException) -> tuple[bool, float | None]:
    """(worth retrying later, Retry-After seconds) for a failed call whose SDK retries are spent:
    HTTP 429 and 5xx, Slack's own "internal" error codes, connection errors and timeouts.
    Anything else (channel_not_found, not_in_channel, missing_scope, invalid_blocks…) is
    permanent: the same call would be refused again."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 200) or 200)
        if status == 429 or status >= 500 or error_code(exc) in TRANSIENT_CODES:
            headers = getattr(response, "headers", None) or {}
            raw = headers.get("Retry-After") or headers.get("retry-after") if hasattr(headers, "get") else None
            if isinstance(raw, list):
                raw = raw[0] if raw else None
            try:
                return True, max(0.0, float(raw)) if raw is not None else None
            except (TypeError, ValueError):
                return True, None
        return False, None
    return isinstance(exc, (OSError, TimeoutError, http.client.HTTPException)), None


def log_api_error(method: str, exc: BaseException, **where: object) -> str:
    """One clear log line per failed call (and one count in /metrics); returns the Slack error code."""
    code = error_code(exc)
    report_api_error("slack", method)
    place = " ".join(f"{k}={v}" for k, v in where.items() if v)
    if code == "missing_scope":
        needed = exc.response.get("needed", "?") if isinstance(exc, SlackApiError) else "?"  # type: ignore[union-attr]
        log.error("slack %s failed: missing_scope (needs %s) %s — add the scope to the app and reinstall it", method, needed, place)
    elif code in ("not_in_channel", "channel_not_found"):
        log.warning("slack %s failed: %s %s — the bot must be invited to that channel", method, code, place)
    else:
        log.error("slack %s failed: %s %s", method, code or repr(exc), place)
    return code


class TokenSource(Protocol):
    def bot_token(self, team_id: str) -> str | None: ...


@dataclass
class SingleToken:
    token: str

    def bot_token(self, team_id: str) -> str | None:
        return self.token or None


@dataclass
class InstalledTokens:
    """Multi-workspace: the bot token each workspace's install stored (slack_sdk store)."""

    store: Any  # slack_sdk InstallationStore

    def bot_token(self, team_id: str) -> str | None:
        bot = self.store.find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot is not None else None


@dataclass
class Clients:
    """One WebClient per token (they are thread-safe and keep a connection pool)."""

    base_url: str
    _cache: dict[str, WebClient] = field(default_factory=dict)
    _single: dict[str, WebClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, token: str | None) -> WebClient:
        key = token or ""
        with self._lock:
            client = self._cache.get(key)
            if client is None:
                client = self._cache[key] = make_client(token, self.base_url)
            return client

    def single_shot(self, client: WebClient) -> WebClient:
        """The same token's client without 5xx / connection retries (`make_single_shot`)."""
        key = client.token or ""
        with self._lock:
            single = self._single.get(key)
            if single is None:
                single = self._single[key] = make_single_shot(client.token, self.base_url, client.timeout)
            return single


@dataclass
class Pacer:
    """About one message per second per channel (chat.postMessage's documented pace)."""

    interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    _next: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, channel: str) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(channel, 0.0))
            self._next[channel] = slot + self.interval
            if len(self._next) > 10_000:
                self._next = {k: v for k, v in self._next.items() if v > now}
        if slot > now:
            self.sleep(slot - now)
