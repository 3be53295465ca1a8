"""What a platform sender tells its caller, and what the caller tells the sender.

Senders (adapters/<platform>/) try every effect they are given, then raise `DeliveryFailed`
when some could not be delivered *for now* (HTTP 429 with Retry-After, 5xx, a connection
error or timeout) once the SDK's own retries are spent, naming those effects, so the caller
retries them alone and never resends the ones that went out. Permanent refusals (the bot is
not in the channel, a missing scope, an archived channel…) are logged by the sender and count
as done: retrying them would only repeat the refusal.

The caller tells the sender, through `attempt(...)`, the durable identity of what it sends
(`key`: an outbox or digest delivery row and the effect's place in it) and whether an earlier
attempt of it may have reached the platform (`retry`): a sender that can label what it posts
(Slack message metadata) labels it with `key`, and on a retry looks for the labelled post
before posting again, so a crash between the platform's answer and "mark sent" leaves one
post, updated in place, never two. A sender whose visible step follows invisible ones (a Slack
upload: the file, then its sharing) notes what it did under `key` (`store.outbox.note_step`)
before that step, and a retry finishes the work rather than starting it again. `context`
carries what a platform stored to answer an interaction later (Slack: response_url, channel,
user; never a token).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping, Sequence

from bot.types import Effect


class DeliveryFailed(Exception):
    """Some effects could not be delivered now and are worth retrying.

    `failed`: those effects (a subset of what the sender was given; empty when unknown, then
    the caller retries everything it sent). `retry_after`: the platform's Retry-After in
    seconds, when it said one."""

    def __init__(self, message: str, *, failed: Sequence[Effect] = (), retry_after: float | None = None) -> None:
        super().__init__(message)
        self.failed: tuple[Effect, ...] = tuple(failed)
        self.retry_after = retry_after

    @staticmethod
    def merge(failures: Sequence["DeliveryFailed"]) -> "DeliveryFailed":
        """One failure for several (platforms, effects): every failed effect, the longest wait."""
        waits = [f.retry_after for f in failures if f.retry_after is not None]
        failed = tuple(e for f in failures for e in f.failed)
        return DeliveryFailed("; ".join(str(f) for f in failures)[:500], failed=failed, retry_after=max(waits) if waits else None)


def failed_effects(exc: BaseException, sent: Sequence[Effect]) -> list[Effect]:
    """The effects of `sent` that `exc` says were not delivered (all of them when it cannot tell)."""
    if isinstance(exc, DeliveryFailed) and exc.failed:
        ids = {id(e) for e in exc.failed}
        named = [e for e in sent if id(e) in ids]
        if named:
            return named
        return [e for e in sent if e in exc.failed]
    return list(sent)


@dataclass(frozen=True)
class Attempt:
    """The durable identity of one effect being sent (see the module docstring)."""

    key: str
    retry: bool = False
    since: datetime | None = None  # when the effect was first recorded: where to look back to
    context: Mapping[str, Any] = field(default_factory=dict)


_ATTEMPT: ContextVar[Attempt | None] = ContextVar("delivery_attempt", default=None)


@contextmanager
def attempt(key: str, *, retry: bool = False, since: datetime | None = None,
            context: Mapping[str, Any] | None = None) -> Iterator[Attempt]:
    """Within this block, senders label and deduplicate what they post with `key`."""
    current = Attempt(key, retry, since, dict(context or {}))
    token = _ATTEMPT.set(current)
    try:
        yield current
    finally:
        _ATTEMPT.reset(token)


def current_attempt() -> Attempt | None:
    return _ATTEMPT.get()
