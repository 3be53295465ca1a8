"""The digest job: find due schedules, claim each (digest, period) once, post it once.

APScheduler only ticks: `adapters/server.py:start_clock` calls `Bot.tick`, which runs this job
once its period (`Job.every`, one minute: handlers/digests/__init__.py) has elapsed, once per period across
every process sharing the database (store/jobs.py claims the turn). Each run:

1. `claim_due`: for every active digest whose `next_run_at` has come, pick the occurrence to
   post (the latest one not older than `settings.digest_grace_hours`; older ones are skipped
   with a log line), insert its `(digest_id, period_key)` row — the insert that wins builds the
   digest and queues one delivery row, in the same transaction — and move `next_run_at` on
   with a conditional update. A second process inserting the same key gets nothing.
2. `deliver_pending`: take a few pending deliveries (PostgreSQL `FOR UPDATE SKIP LOCKED`; on
   every backend a conditional update pending → sending with a lease), send each through
   `services.deliver`, and mark it sent only after that returns. A retryable failure (the
   sender's `DeliveryFailed`: 429, 5xx, unreachable) puts the row back to pending until the
   platform's Retry-After or a growing backoff; after `MAX_ATTEMPTS` it is given up
   ("failed", logged). A process that dies mid-delivery leaves the row "sending"; once its
   lease expires a later run sends it. Each send runs under `bot.delivery.attempt(
   "digest:<delivery id>", retry=<an earlier attempt may have posted>)`: Slack labels the post
   with that key (message metadata) and, on a retry, updates an earlier attempt's post in
   place instead of adding one (docs/digests.md, "Delivery"). Deliveries also carry the anchor
   `digest:<id>:<period>`.

A run claims at most `DUE_PER_TICK` digests and sends at most `SENDS_PER_TICK` deliveries,
one per target: Monday 09:00 does not burst every digest at once; adapters pace the rest.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy.orm import Session

from bot.context import JobCtx, Services, zone
from handlers.digests import payload
from handlers.digests.content import Content, build_channel, build_personal
from handlers.digests.cron import Cron, next_after, period_key, previous_wall
from handlers.digests.render import render_channel, render_personal
from handlers.digests.sources import contribution_source, follow_source
from bot.delivery import DeliveryFailed, attempt
from bot.locale import for_channel, for_person
from bot.types import ConversationRef, Effect, Outbound, UserRef
from store import digests as store
from store.db import ALL_TENANTS
from store.models.core import Conversation, Person, Workspace
from store.models.digests import Digest

log = logging.getLogger(__name__)
DUE_PER_TICK = 200
SENDS_PER_TICK = 60
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)  # after a failed attempt: 1, 2, 4, 8 minutes (or the platform's Retry-After)
BACKOFF_CAP = timedelta(minutes=30)


def retry_at(now: datetime, attempts: int, retry_after: float | None) -> datetime:
    """When a delivery that failed its `attempts`-th time is tried again."""
    wait = min(BACKOFF_CAP, BACKOFF * 2 ** max(0, attempts - 1))
    if retry_after is not None:
        wait = max(timedelta(seconds=min(retry_after, BACKOFF_CAP.total_seconds())), timedelta(seconds=1))
    return now + wait


def period_for(digest: Digest, occurrence: datetime) -> tuple[datetime, datetime]:
    """The [start, end) window an occurrence reports on (one local day, week or month)."""
    tz = zone(digest.tz)
    following = next_after(Cron.parse(digest.cron), occurrence, tz) if digest.frequency == "cron" else None
    return previous_wall(digest.frequency, occurrence, tz, following), occurrence


def compose(services: Services, session: Session, digest: Digest, start: datetime, end: datetime,
            anchor: str | None = None) -> tuple[Outbound, str] | None:
    """The digest for [start, end) and its target key, or None when there is nothing new."""
    workspace = session.get(Workspace, digest.tenant)
    platform = workspace.platform if workspace else ""
    prompts, command = services.prompts, services.settings.command_name
    content: Content
    if digest.kind == "channel":
        conv = session.get(Conversation, digest.conversation_id) if digest.conversation_id else None
        if conv is None:
            return None
        content = build_channel(session, digest, conv, start, end, contribution_source())
        if content.empty:
            return None
        locale = for_channel(services.settings.default_locale, workspace, conv)
        reply = render_channel(prompts, locale, content, conv.name, digest.frequency, command)
        to: ConversationRef | UserRef = ConversationRef(platform, digest.tenant, conv.external_id, conv.kind, name=conv.name)  # type: ignore[arg-type]
        return Outbound(reply, to, anchor=anchor), f"conversation:{conv.external_id}"
    person = session.get(Person, digest.person_id) if digest.person_id else None
    if person is None or not person.active:
        return None
    content = build_personal(session, person, start, end, follow_source())
    if content.empty:
        return None
    locale = for_person(services.settings.default_locale, workspace, person)
    name = person.display_name or person.handle
    reply = render_personal(prompts, locale, content, name, digest.frequency, command)
    return Outbound(reply, UserRef(platform, digest.tenant, person.external_id, name), anchor=anchor), f"user:{person.external_id}"


def claim_due(services: Services, digest_id: int, tenant: str, now: datetime) -> str:
    """Claim and build the due period of one digest. Returns what happened, for tests and logs:
    "queued", "empty", "taken" (another process or tick had it), "missed" or "idle"."""
    grace = timedelta(hours=services.settings.digest_grace_hours)
    with services.db.session(tenant) as session:
        digest = session.get(Digest, digest_id)
        if digest is None or digest.status != "active" or digest.next_run_at is None or digest.next_run_at > now:
            return "idle"
        cron, tz = Cron.parse(digest.cron), zone(digest.tz)
        seen = digest.next_run_at
        occurrence: datetime | None = seen
        outcome = "idle"
        if now - seen > grace:
            log.warning("digest %s (%s): run due %s missed by more than %s, skipped", digest.id, tenant,
                        period_key(seen, tz), grace)
            occurrence = next_after(cron, now - grace - timedelta(microseconds=1), tz)
            outcome = "missed"
        first = occurrence
        while occurrence is not None and occurrence <= now:
            later = next_after(cron, occurrence, tz)
            if later is None or later > now:
                break
            log.info("digest %s (%s): run %s merged into a later one", digest.id, tenant, period_key(occurrence, tz))
            occurrence = later
        following = occurrence
        if occurrence is not None and occurrence <= now:
            following = next_after(cron, occurrence, tz)
            outcome = _claim(services, session, digest, occurrence, now, since=first)
        store.advance(session, digest.id, seen, following)
        return outcome


def _claim(services: Services, session: Session, digest: Digest, occurrence: datetime, now: datetime,
           since: datetime | None) -> str:
    """Claim `occurrence`; its digest covers the periods of every occurrence caught up since
    `since` (runs coalesced after a short downtime lose no content)."""
    key = period_key(occurrence, zone(digest.tz))
    start = period_for(digest, since or occurrence)[0]
    end = occurrence
    run = store.claim_period(session, digest, key, occurrence, start, "claimed", now)
    if run is None:
        return "taken"
    built = compose(services, session, digest, start, end, anchor=f"digest:{digest.id}:{key}")
    if built is None:
        run.status = "empty"
        log.info("digest %s: nothing new for %s, not posted", digest.id, key)
        return "empty"
    outbound, target = built
    store.add_delivery(session, run, target, payload.dumps(outbound), now)
    run.status = "queued"
    return "queued"


def deliver_pending(services: Services, now: datetime) -> list[Effect]:
    """Send a few queued deliveries. With `services.deliver` set (a running adapter) each is
    sent now and marked sent after; without it they are returned for the caller to send."""
    with services.db.session(ALL_TENANTS) as session:
        claimed = [(d.id, d.payload, d.attempts, d.created_at)
                   for d in store.claim_deliveries(session, now, LEASE, SENDS_PER_TICK, MAX_ATTEMPTS)]
    returned: list[Effect] = []
    for delivery_id, text, attempts, created in claimed:
        outbound = payload.loads(text)
        if services.deliver is not None:
            try:
                with attempt(f"digest:{delivery_id}", retry=attempts > 1, since=created):
                    services.deliver([outbound])
            except DeliveryFailed as exc:  # the platform said "later": retried then; the others still go out
                log.warning("digest delivery %s failed (attempt %d): %s; retried later", delivery_id, attempts, exc)
                with services.db.session(ALL_TENANTS) as session:
                    store.retry_later(session, delivery_id, retry_at(now, attempts, exc.retry_after))
                continue
            except Exception:  # noqa: BLE001 - outcome unknown, like a crash: retried once the lease expires
                log.exception("digest delivery %s failed (attempt %d); retried after its lease", delivery_id, attempts)
                continue
        else:
            returned.append(outbound)
        with services.db.session(ALL_TENANTS) as session:
            store.mark_sent(session, delivery_id, services.clock.now())
    if claimed:
        with services.db.session(ALL_TENANTS) as session:
            failed = store.give_up(session, MAX_ATTEMPTS, now)
        if failed:
            log.error("%d digest deliveries failed %d times and were given up", failed, MAX_ATTEMPTS)
    return returned


def run(jctx: JobCtx) -> Sequence[Effect]:
    """The registered job: claim what is due, then deliver what is queued."""
    services, now = jctx.services, jctx.now
    for digest_id, tenant in store.due(jctx.session, now, DUE_PER_TICK):
        try:
            claim_due(services, digest_id, tenant, now)
        except Exception:  # noqa: BLE001 - one broken digest must not stop the others
            log.exception("digest %s (%s) failed", digest_id, tenant)
    return deliver_pending(services, now)


def preview(services: Services, session: Session, digest: Digest, now: datetime) -> Outbound | None:
    """What the digest would post if its period ended now (messages of this very second included)."""
    start, _ = period_for(digest, now)
    built = compose(services, session, digest, start, now + timedelta(seconds=1))
    return built[0] if built else None
