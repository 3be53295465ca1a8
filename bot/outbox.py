"""The durable outbox: effects a committed transaction decided are sent after the commit,
marked sent only once the platform took them, and retried until then.

    leased = outbox.record(session, effects, now, context=…, token=outbox.new_token())  # in the work's transaction
    … commit …
    outbox.deliver(db, clock, leased, effects, send)                                      # right after

`record` writes one row (store/outbox.py) in the transaction that decided the effects, leased
to the process that sends them right after the commit. `deliver` sends each effect under
`bot.delivery.attempt("outbox:<row>:<index>", …)` and marks the row sent when all went out;
on `DeliveryFailed` it remembers which went out and backs off (the platform's Retry-After
first). A process killed in between loses its lease; `sweep` (the `outbox.send` job, every
tick) sends what is due, as retries: on Slack, a post an earlier attempt made is found by its
metadata label and updated in place rather than posted twice, and an upload whose file id the
sender noted for the key (`store.outbox.note_step`) is completed only if Slack does not show it
yet. Ephemerals and response_url answers cannot be looked up: those are at-least-once.

Live pings: effects are stored with `bot/effects_json.py`, which seals this process's live
markers so the process that resends them pings the same people (see that module).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.orm import Session

from bot import effects_json
from bot.clock import Clock
from bot.delivery import DeliveryFailed, attempt
from bot.types import Effect, effect_target
from store import outbox as store
from store.db import ALL_TENANTS, Database
from store.outbox import Leased, new_token

log = logging.getLogger(__name__)
Send = Callable[[Sequence[Effect]], None]
SWEEP_BATCH = 50

__all__ = ["record", "deliver", "sweep", "keep", "new_token", "Leased"]


def _where(effects: Sequence[Effect]) -> tuple[str, str]:
    for effect in effects:
        target = effect_target(effect)
        if target is not None:
            return target.platform, target.tenant
    return "", ""


def record(session: Session, effects: Sequence[Effect], now: datetime, *, context: Mapping[str, Any] | None = None,
           source: str = "", token: str | None = None) -> Leased | None:
    """Write `effects` in `session`'s transaction (None when there are none). With `token`, the
    row is leased to the caller, who sends it after the commit; without, the sweeper sends it."""
    if not effects:
        return None
    platform, tenant = _where(effects)
    return store.record(session, effects_json.dumps_all(effects), now, platform=platform, tenant=tenant, source=source,
                        context=json.dumps(dict(context or {}), ensure_ascii=False), token=token)


def deliver(db: Database, clock: Clock, row: Leased, send: Send, effects: Sequence[Effect] | None = None, *,
            retry: bool = False) -> bool:
    """Send the row's effects not yet delivered, one at a time, then mark the row sent or back
    off. `effects`: the row's effects when the caller still has them (else decoded from the row).
    True when everything went out."""
    if effects is None:
        try:
            effects = effects_json.loads_all(row.effects)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("outbox: row %d cannot be read (%s); given up", row.id, exc)
            store.fail(db, row, row.done, f"unreadable: {exc}", clock.now(), retry_after=None)
            return False
    context = json.loads(row.context or "{}")
    done = set(row.done)
    failures: list[DeliveryFailed] = []
    for index, effect in enumerate(effects):
        if index in done:
            continue
        try:
            with attempt(f"outbox:{row.id}:{index}", retry=retry, since=row.created_at, context=context):
                send([effect])
            done.add(index)
        except DeliveryFailed as exc:
            failures.append(exc)
        except Exception as exc:  # noqa: BLE001 - outcome unknown: retried (as a retry, deduplicated where possible)
            log.exception("outbox: row %d effect %d failed", row.id, index)
            failures.append(DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300]))
    now = clock.now()
    if not failures:
        if not store.mark_sent(db, row, now):
            log.warning("outbox: row %d was taken over by another sender before it was marked sent", row.id)
        return True
    merged = DeliveryFailed.merge(failures)
    state = store.fail(db, row, frozenset(done), str(merged), now, merged.retry_after)
    log.warning("outbox: row %d: %d effect(s) not delivered (%s); %s", row.id, len(effects) - len(done), merged,
                "given up" if state == "failed" else "retried later")
    return False


def sweep(db: Database, clock: Clock, send: Send | None, worker: str = "sweeper") -> list[Effect]:
    """Send the due rows (left by a crash, or backing off after a failure). Without `send` (no
    running adapter) their effects are returned for the caller to send, and marked sent."""
    returned: list[Effect] = []
    for row in store.claim(db, worker, SWEEP_BATCH, clock.now()):
        if send is None:
            try:
                effects = effects_json.loads_all(row.effects)
            except (ValueError, TypeError, KeyError) as exc:
                store.fail(db, row, row.done, f"unreadable: {exc}", clock.now())
                continue
            returned += [e for i, e in enumerate(effects) if i not in row.done]
            store.mark_sent(db, row, clock.now())
            continue
        deliver(db, clock, row, send, retry=True)
    return returned


def keep(db: Database, effects: Sequence[Effect], now: datetime, retry_after: float | None = None,
         source: str = "") -> None:
    """Effects whose delivery failed outside any recorded row (a job's effects sent after its
    commit): written now, due after `retry_after` (or a short backoff), for the sweeper."""
    if not effects:
        return
    platform, tenant = _where(effects)
    wait = min(retry_after, store.BACKOFF_CAP) if retry_after is not None else store.BACKOFF_BASE
    with db.session(ALL_TENANTS) as session:
        store.record(session, effects_json.dumps_all(effects), now, platform=platform, tenant=tenant, source=source,
                     due=now + timedelta(seconds=max(1.0, wait)))
