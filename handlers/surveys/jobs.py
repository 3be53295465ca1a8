"""The surveys' jobs: invitations and reminders (`surveys.send`, every minute) and closing
(`surveys.close`). Each DM is claimed by a conditional update of its participant row
(store/surveys.py `claim_invitations` / `claim_reminders`, one UPDATE per batch), so several worker processes send
each one once; with a running adapter the DMs go to the durable outbox in the transaction
that claims them (bot/outbox.py), leased to this process, which sends them right after the
commit; the sweeper (`outbox.send`) retries what the platform refused or a crash left.

Pacing: an invitation goes at a working hour of the person's own time zone (Monday–Friday,
09:00–17:59, `Person.tz`, UTC when unknown); each run sends at most `PER_RUN` DMs per
workspace (one run a minute: 1,500 a minute stays under Teams' ~50 requests/s per tenant with
room for everything else; DMs are one per conversation, so Slack's 1 message/s per channel
does not bind). The rest waits for the next run."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import outbox
from bot.context import Ctx, JobCtx, zone
from bot.types import Action, Card, Effect, Outbound
from store import surveys as store
from store.models.core import Person, Workspace
from store.models.surveys import Survey, SurveyParticipant
from store.surveys import QuestionDraft, SurveyError

PER_RUN = 1500
WORK_START, WORK_END = 9, 18


def working_hour(person: Person, now: datetime) -> bool:
    local = now.astimezone(zone(person.tz))
    return local.weekday() < 5 and WORK_START <= local.hour < WORK_END


def invitation(ctx: Ctx, survey: Survey, person: Person, *, reminder: bool = False, count: int | None = None) -> Outbound:
    """The DM: what the survey is, whether it is anonymous, until when; Answer / Decline.
    `count`: the number of questions, when the caller already knows it (a run sends many)."""
    t = ctx.t_for
    if count is None:
        count = len(store.questions(ctx.session, survey.id))
    notice = t(person, "surveys.anonymous_notice" if survey.anonymous else "surveys.named_notice")
    body = t(person, "surveys.invite_body", count=count, day=survey.closes_on) + "\n" + notice
    actions = (Action(t(person, "surveys.button.answer"), f"survey answer {survey.id}", "primary"),
               Action(t(person, "surveys.button.decline"), f"survey decline {survey.id}"))
    key = "surveys.reminder" if reminder else "surveys.invite"
    card = Card(title=t(person, key + "_title", title=survey.title), body=body, actions=actions)
    return ctx.dm(person, key, card=card, title=survey.title, day=survey.closes_on)


def _send_in(jctx: JobCtx, session: Session, survey: Survey, budget: int) -> list[Effect]:
    workspace = session.get(Workspace, survey.tenant)
    if workspace is None:
        return []
    effects: list[Effect] = []
    today = jctx.now.date()
    rows: list[tuple[SurveyParticipant, int]] = [(p, 0) for p in store.pending_invitations(session, survey.id, budget * 4)]
    number = store.reminder_number_due(survey, today)
    if number and len(rows) < budget:
        rows += [(p, number) for p in store.reminder_targets(session, survey, number, budget * 4)]
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_({r.person_id for r, _ in rows})))}
    due: list[tuple[SurveyParticipant, int, Person]] = []
    for row, reminder in rows:
        if len(due) >= budget:
            break
        person = people.get(row.person_id)
        if person is not None and person.active and working_hour(person, jctx.now):
            due.append((row, reminder, person))
    # claimed in batches (one conditional UPDATE per kind and chunk), then sent
    claimed = store.claim_invitations(session, [r.id for r, reminder, _ in due if not reminder])
    for number_due in {reminder for _, reminder, _ in due if reminder}:
        claimed |= store.claim_reminders(session, [r.id for r, reminder, _ in due if reminder == number_due], number_due)
    count = len(store.questions(session, survey.id))
    for row, reminder, person in due:
        if row.id in claimed:
            ctx = jctx.acting_as(session, workspace, person)
            effects.append(invitation(ctx, survey, person, reminder=bool(reminder), count=count))
    if number > survey.reminders_sent and not store.reminder_targets(session, survey, number, 1):
        survey.reminders_sent = number
    return effects


def send(jctx: JobCtx) -> list[Effect]:
    open_surveys = [(s.tenant, s.id) for s in jctx.session.scalars(
        select(Survey).where(Survey.status == "open").order_by(Survey.id))]
    budgets: dict[str, int] = {}
    returned: list[Effect] = []
    for tenant, survey_id in open_surveys:
        budget = PER_RUN - budgets.get(tenant, 0)
        if budget <= 0:
            continue
        leased = None
        with jctx.services.db.session(tenant) as session:
            survey = session.get(Survey, survey_id)
            if survey is None or survey.status != "open" or jctx.now.date() > survey.closes_on:
                continue
            effects = _send_in(jctx, session, survey, budget)
            budgets[tenant] = budgets.get(tenant, 0) + len(effects)
            if effects and jctx.services.deliver is not None:
                leased = outbox.record(session, effects, jctx.now, source="surveys.send", token=outbox.new_token())
            else:
                returned += effects
        if leased is not None and jctx.services.deliver is not None:  # committed: send now, the sweeper retries
            outbox.deliver(jctx.services.db, jctx.services.clock, leased, jctx.services.deliver, effects)
    return returned


def close_due(jctx: JobCtx) -> list[Effect]:
    """Close each survey whose closing day has passed (UTC), once; tell its author; open the
    next one of a recurring survey."""
    today = jctx.now.date()
    due = [(s.tenant, s.id) for s in jctx.session.scalars(
        select(Survey).where(Survey.status == "open", Survey.closes_on < today))]
    effects: list[Effect] = []
    for tenant, survey_id in due:
        with jctx.services.db.session(tenant) as session:
            survey = session.get(Survey, survey_id)
            if survey is None or not store.close(session, survey, today):
                continue
            jctx.audit(session, "survey.close", f"#{survey.id} (closing day)")
            workspace = session.get(Workspace, tenant)
            author = session.get(Person, survey.author_id) if survey.author_id else None
            if workspace is None or author is None:
                continue
            ctx = jctx.acting_as(session, workspace, author)
            answered = store.counts(session, survey.id)["answered"]
            effects.append(ctx.dm(author, "surveys.closed_notice", id=survey.id, title=survey.title, count=answered))
            if survey.recurrence:
                effects.append(_recur(ctx, survey, today))
    return effects


def _recur(ctx: Ctx, survey: Survey, today: date) -> Effect:
    span = max(1, (survey.closes_on - survey.created_on).days)
    drafts = [QuestionDraft(q.kind, q.text, tuple(q.choices or ())) for q in store.questions(ctx.session, survey.id)]
    try:
        with ctx.session.begin_nested():
            following = store.create(ctx.session, author_id=ctx.actor.id, title=survey.title, questions=drafts,
                                     audience_kind=survey.audience_kind, audience_value=survey.audience_value,
                                     anonymous=survey.anonymous, closes_on=today + timedelta(days=span), today=today,
                                     reminders=survey.reminders, recurrence=survey.recurrence)
            following.parent_id = survey.id
    except SurveyError as error:
        return ctx.dm(ctx.actor, "surveys.recur_failed", id=survey.id, reason=ctx.t(error.key, **error.params))
    return ctx.dm(ctx.actor, "surveys.recurred", id=following.id, title=following.title, day=following.closes_on)

