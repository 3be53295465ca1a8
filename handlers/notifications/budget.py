"""Real-time pings within each person's budget.

    notify(ctx, person, "ideas.voted", params={...}, thread_key="idea:42") -> list[Effect]

A ping is queued as a row (store/notifications.py). The periodic job `notify.flush`
sends each person one grouped DM once their oldest pending ping has waited
`settings.notify_group_minutes`, and never during their quiet hours (in their own time
zone) or while snoozed; pings over `settings.notify_daily_cap` (or the person's own cap)
for their local day are dropped (`capped`). A (person, thread_key) pair pings once, ever.
`urgent=True` skips the grouping wait and goes out at once when the person is neither in
quiet hours nor snoozed nor over the cap; it still counts against the cap.

Nothing marked sent is lost: with a running adapter, `flush` writes its DMs to the durable
outbox (bot/outbox.py) in the transaction that marks the pings sent, and the outbox sends them
after the commit, retrying a DM the platform refused for now (429, 5xx) until it goes out.
An urgent ping's DM is one of the effects of the command or job that made it: recorded by
the inbox row's transaction (commands), or kept by the outbox when a job's delivery fails.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from bot import outbox
from bot.context import Ctx, JobCtx, zone
from bot.locale import for_person
from bot.registry import Job, Registry
from bot.types import Action, Card, Effect, Outbound, Reply, UserRef
from bot.words import parse_quiet_hours
from store import notifications as queue
from store.models.core import Person, Workspace
from store.models.notifications import Notification

MAX_LINES = 12
MAX_ACTIONS = 5


def notify(
    ctx: Ctx,
    person: Person,
    key: str,
    *,
    params: dict[str, Any],
    thread_key: str | None = None,
    urgent: bool = False,
    actions: tuple[Action, ...] = (),
) -> list[Effect]:
    """Queue a ping for `person` (rendered later in their language from prompt `key`).

    `params` must be JSON-serialisable; action labels that are prompt keys are translated
    for the recipient. Returns the DM to send now (urgent and deliverable) or nothing.
    Inactive people and bots are never pinged. Callers skip the actor themselves if needed.
    """
    if person.is_bot or not person.active:
        return []
    now = ctx.now()
    row = queue.enqueue(
        ctx.session, ctx.tenant, person.id, key, dict(params), thread_key=thread_key, urgent=urgent,
        actions=[(a.label, a.command, a.style) for a in actions], now=now,
    )
    if row is None or not urgent:
        return []
    effects = _deliver(ctx.services, ctx.session, person, ctx.workspace, [row], now)
    return effects


def in_quiet_hours(local: datetime, spec: str) -> bool:
    try:
        window = parse_quiet_hours(spec)
    except ValueError:
        return False
    if window is None:
        return False
    start, end = window
    t = local.time().replace(second=0, microsecond=0)
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def held(person: Person, b: queue.Budget, now: datetime) -> bool:
    """True while pings must wait: snoozed, or quiet hours in the person's time zone."""
    if b.snooze_until is not None and now < b.snooze_until:
        return True
    return in_quiet_hours(now.astimezone(zone(person.tz)), b.quiet_hours)


def local_day_start(person: Person, now: datetime) -> datetime:
    local = now.astimezone(zone(person.tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _deliver(services: Any, session: Any, person: Person, workspace: Workspace, rows: list[Notification],
             now: datetime) -> list[Effect]:
    """Send `rows` now as one DM if the budget allows; mark them sent, capped or leave them."""
    settings = services.settings
    b = queue.budget(session, person.id, settings.notify_daily_cap, settings.quiet_hours)
    if held(person, b, now):
        for row in rows:
            if row.status == "claimed":
                row.status = "pending"
                row.claim_token = None
        session.flush()
        return []
    room = max(0, b.daily_cap - queue.sent_since(session, person.id, local_day_start(person, now)))
    sending, capped = rows[:room], rows[room:]
    queue.mark(session, capped, "capped", now)
    if not sending:
        return []
    queue.mark(session, sending, "sent", now)
    return [render(services, person, workspace, sending)]


def render(services: Any, person: Person, workspace: Workspace, rows: Sequence[Notification]) -> Outbound:
    """One DM for one or several pings, in the recipient's language."""
    prompts = services.prompts
    locale = for_person(services.settings.default_locale, workspace, person)
    lines = [prompts.t(locale, r.key, **(r.params or {})) for r in rows]
    actions: list[Action] = []
    for r in rows:
        for label, command, style in r.actions or []:
            if len(actions) < MAX_ACTIONS:
                shown = prompts.t(locale, label) if prompts.has(label) else label
                actions.append(Action(shown, command, style))
    to = UserRef(workspace.platform, workspace.id, person.external_id, person.display_name)
    if len(rows) == 1:
        row = rows[0]
        card = Card(title=prompts.t(locale, "notifications.single_title"), body=lines[0], actions=tuple(actions)) if actions else None
        return Outbound(Reply(text=lines[0], card=card, key=row.key, params=dict(row.params or {})), to=to)
    shown_lines = lines[:MAX_LINES]
    more = len(lines) - len(shown_lines)
    body = "\n".join("• " + line for line in shown_lines)
    footer = prompts.t(locale, "notifications.more", count=more) if more else prompts.t(locale, "notifications.footer")
    title = prompts.t(locale, "notifications.grouped", count=len(rows))
    card = Card(title=title, body=body, actions=tuple(actions), footer=footer)
    return Outbound(Reply(text=title + "\n" + body, card=card, key="notifications.grouped", params={"count": len(rows)}), to=to)


def flush(jctx: JobCtx) -> list[Effect]:
    """The periodic job: one grouped DM per person whose pings are due."""
    settings = jctx.services.settings
    group = timedelta(minutes=settings.notify_group_minutes)
    effects: list[Effect] = []
    for person_id in queue.people_with_due(jctx.session, jctx.now, group):
        found = queue.person_and_workspace(jctx.session, person_id)
        if found is None:
            continue
        person, workspace = found
        b = queue.budget(jctx.session, person.id, settings.notify_daily_cap, settings.quiet_hours)
        if held(person, b, jctx.now):
            continue
        rows = queue.claim_pending(jctx.session, person.id)
        if rows:
            effects += _deliver(jctx.services, jctx.session, person, workspace, rows, jctx.now)
    if effects and jctx.services.deliver is not None:
        # A running adapter: the DMs go to the durable outbox in the transaction that marks the
        # pings sent; the outbox job (same tick, right after) sends them and retries a 429/5xx.
        outbox.record(jctx.session, effects, jctx.now, source="notifications.flush")
        return []
    return effects


def register_jobs(r: Registry) -> None:
    """Called by handlers/notifications/__init__.py so the flush job exists whenever the feature does."""
    r.job(Job("notifications.flush", timedelta(minutes=1), flush))
