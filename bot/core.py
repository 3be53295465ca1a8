"""The bot: one neutral event in, a list of effects out. No platform code here."""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.addressing import command_text
from bot.context import Ctx, JobCtx, Services, UserError
from bot.locale import for_actor
from bot.registry import CommandSpec, Job
from bot.text import extract_hashtags, sanitize
from bot.types import ConversationRef, Effect, Event, IncomingMessage, Outbound, Reply
from bot.unit import guarded, unit
from store import jobs as jobs_store
from store import people as people_store
from store.db import ALL_TENANTS
from store.transient import must_propagate
from store.models.core import Workspace

log = logging.getLogger(__name__)
InTransaction = Callable[[Session], None]
RecordEffects = Callable[[Session, Sequence[Effect]], None]


class Bot:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.registry = services.registry

    # Events ----------------------------------------------------------------
    def handle(self, event: Event, *, in_transaction: InTransaction | None = None,
               record: RecordEffects | None = None) -> list[Effect]:
        """Handle one event in one transaction (a savepoint of the inbox worker's batch
        transaction while it processes a batch: bot/unit.py). Never raises for bad input or
        handler bugs.

        `in_transaction(session)` runs in that same transaction just before it commits: the
        durable inbox marks its row done there, so the work and "done" commit together. With
        it, failures worth retrying (the database unreachable or locked, a lost inbox lease)
        propagate to the caller instead of becoming an error reply; a handler bug is still
        answered with an error, and `in_transaction` then runs in a transaction of its own.
        `record(session, effects)` runs just before `in_transaction`, in the same transaction,
        with the effects about to be returned (the durable outbox writes them there, so the
        replies a committed event decided cannot be lost); it sees the error reply too.
        """
        try:
            if isinstance(event, IncomingMessage):
                return self._handle_message(event, in_transaction, record)
            return self._handle_other(event, in_transaction, record)
        except Exception as exc:  # noqa: BLE001 - the adapters must always get an answer
            if in_transaction is not None and must_propagate(exc):
                raise
            log.exception("event failed: %r", type(event).__name__)
            effects: list[Effect] = [self._error_reply(event)] if isinstance(event, IncomingMessage) and event.addressed else []
            if in_transaction is not None or (record is not None and effects):
                with unit(self.services.db, ALL_TENANTS) as session:
                    if record is not None and effects:
                        record(session, effects)
                    if in_transaction is not None:
                        in_transaction(session)
            return effects

    def _error_reply(self, msg: IncomingMessage) -> Outbound:
        lang = msg.locale or self.services.settings.default_locale
        text = self.services.prompts.t(lang, "error.internal")
        return Outbound(Reply(text=text, key="error.internal", private=True), msg.conversation, private_for=msg.sender)

    def _ctx(self, session: Session, msg: IncomingMessage | None, ref_user: Any, conv: ConversationRef | None) -> Ctx:
        settings = self.services.settings
        now = self.services.clock.now()
        tenant = (conv or ref_user).tenant
        platform = (conv or ref_user).platform
        # On PostgreSQL the read also records the membership the event shows (one statement, not two).
        join_at = now if conv is not None and conv.kind != "dm" else None
        rows = self._event_rows(session, tenant, platform, ref_user.id, conv.id if conv is not None else None, join_at)
        workspace = rows.workspace
        assert workspace is not None
        actor = people_store.sync_person(session, rows.person, ref_user, now)
        conversation = people_store.sync_conversation(session, rows.conversation, conv, now) if conv is not None else None
        if conversation is not None and conversation.kind != "dm" and not rows.member:
            people_store.add_member(session, conversation, actor, now)
        locale = for_actor(settings.default_locale, workspace, actor, msg.locale if msg else None)
        return Ctx(self.services, session, workspace, actor, conversation, msg, locale, platform)

    def _event_rows(self, session: Session, tenant: str, platform: str, user_id: str,
                    conversation_id: str | None, join_at: datetime | None = None) -> people_store.EventRows:
        """The event's stored rows in one query; the workspace is created on its tenant's first event."""
        rows = people_store.event_rows(session, tenant, user_id, conversation_id, join_at=join_at)
        if rows.workspace is None:
            people_store.ensure_workspace(session, tenant, platform, self.services.settings.default_locale)
            rows = people_store.event_rows(session, tenant, user_id, conversation_id, join_at=join_at)
        return rows

    def _handle_message(self, raw: IncomingMessage, in_transaction: InTransaction | None = None,
                        record: RecordEffects | None = None) -> list[Effect]:
        keep = [m.id for m in raw.mentions]
        text = sanitize(raw.text, keep=keep, channels=raw.channels)
        at = raw.bot_mention_at
        if at is not None:  # sanitizing drops characters: where the bot's mention stood moves with them
            at = len(sanitize(raw.text[: max(0, min(at, len(raw.text)))], keep=keep, channels=raw.channels))
        msg = replace(raw, text=text, hashtags=raw.hashtags or extract_hashtags(text), bot_mention_at=at)
        effects: list[Effect] = []
        with unit(self.services.db, msg.conversation.tenant) as session:
            ctx = self._ctx(session, msg, msg.sender, msg.conversation)
            effects += self._run_hooks(ctx, msg)
            people_store.end_event(session)
            if msg.addressed:
                effects += self._dispatch(ctx, msg)
            if record is not None and effects:
                record(session, effects)
            if in_transaction is not None:
                in_transaction(session)
        return effects

    def _handle_other(self, event: Event, in_transaction: InTransaction | None = None,
                      record: RecordEffects | None = None) -> list[Effect]:
        hooks = self.registry.hooks.get(type(event), [])
        if not hooks:
            if in_transaction is not None:
                with unit(self.services.db, ALL_TENANTS) as session:
                    in_transaction(session)
            return []
        conv = getattr(event, "conversation", None)
        user = getattr(event, "user", None) or getattr(event, "sender", None)
        if user is None and conv is not None:
            from bot.types import UserRef

            user = UserRef(conv.platform, conv.tenant, "causette-system", "Causette", is_bot=True)
        effects: list[Effect] = []
        with unit(self.services.db, (conv or user).tenant) as session:
            ctx = self._ctx(session, None, user, conv)
            effects += self._run_hooks(ctx, event)
            people_store.end_event(session)
            if record is not None and effects:
                record(session, effects)
            if in_transaction is not None:
                in_transaction(session)
        return effects

    def _run_hooks(self, ctx: Ctx, event: Event) -> list[Effect]:
        effects: list[Effect] = []
        for hook in self.registry.hooks.get(type(event), []):
            try:
                with guarded(ctx.session):  # a savepoint (none in an optimistic inbox batch: bot/unit.py)
                    effects += list(hook(ctx, event) or [])
            except Exception as exc:  # noqa: BLE001 - one broken hook must not lose the message
                if must_propagate(exc):  # a lost connection or a deadlock: the whole event is retried
                    raise
                log.exception("hook %s failed", getattr(hook, "__qualname__", hook))
        return effects

    # Commands --------------------------------------------------------------
    def _dispatch(self, ctx: Ctx, msg: IncomingMessage) -> list[Effect]:
        command = self.services.settings.command_name
        text = command_text(msg.text, msg.bot_mention_at, self.registry.match, command)
        if not text:
            return self._as_effects(ctx, msg, ctx.reply("error.empty_command", private=True, command=command))
        match = self.registry.match(text)
        if match is None:
            suggestion = self.registry.closest(text)
            if suggestion is None:
                reply = ctx.reply("error.unknown_command_no_hint", private=True, command=command)
            else:
                reply = ctx.reply(
                    "error.unknown_command", private=True, suggestion=self._alias_for(ctx, suggestion), command=command
                )
            return self._as_effects(ctx, msg, reply)
        spec, args = match.spec, match.args
        limit = spec.max_args or self.services.settings.max_argument_chars
        if len(args) > limit:
            reply = ctx.reply("error.too_long", private=True, limit=limit, length=len(args))
            return self._as_effects(ctx, msg, reply)
        if spec.permission == "admin" and not ctx.is_admin:
            try:
                ctx.require_role((), None, spec.action_key)
            except UserError as refusal:
                return self._as_effects(ctx, msg, ctx.reply(refusal.key, private=True, **refusal.params))
        if spec.needs_args and not args and not msg.form_values:
            reply = ctx.reply("error.missing_argument", private=True, usage=ctx.t(spec.usage_key or spec.help_key))
            return self._as_effects(ctx, msg, reply)
        try:
            with guarded(ctx.session):
                result = spec.handler(ctx, msg, args)
        except UserError as err:
            # Refusals echo what was typed: never let an echoed mention ping anyone.
            params = {k: ctx.plain(v) if isinstance(v, str) else v for k, v in err.params.items()}
            result = ctx.reply(err.key, private=True, **params)
        return self._as_effects(ctx, msg, result)

    def _alias_for(self, ctx: Ctx, spec: CommandSpec) -> str:
        return self.registry.spelling(spec, ctx.locale)

    def _as_effects(self, ctx: Ctx, msg: IncomingMessage, result: Reply | Sequence[Effect] | None) -> list[Effect]:
        if result is None:
            return []
        if isinstance(result, Reply):
            return [ctx.answer(result)]
        return list(result)

    # Jobs ------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> list[Effect]:
        """Run every registered job whose period (`Job.every`) has elapsed at `now`, at most once
        per period across every process sharing the database (store/jobs.py claims the turn),
        and return their effects for the caller to deliver. A job that raises is logged and
        recorded (`job_runs.last_error`); the others still run. Never raises for a database
        that is down or busy: the next tick tries again."""
        now = now or self.services.clock.now()
        db = self.services.db
        periods = {job.name: job.every for job in self.registry.jobs}
        try:
            with db.session(ALL_TENANTS, readonly=True) as session:
                due = set(jobs_store.due(session, periods, now))
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.warning("tick: could not read the jobs' last runs", exc_info=True)
            return []
        effects: list[Effect] = []
        for job in self.registry.jobs:
            if job.name not in due:
                continue
            try:
                with db.session(ALL_TENANTS) as session:
                    claimed = jobs_store.claim(session, job.name, job.every, now)
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.warning("tick: could not claim job %s", job.name, exc_info=True)
                continue
            if claimed:
                effects += self._run_claimed(job, now)
        return effects

    def _run_claimed(self, job: Job, now: datetime) -> list[Effect]:
        started = time.monotonic()
        effects, error = self._run(job, now)
        finished_at = now + timedelta(seconds=time.monotonic() - started)
        try:
            with self.services.db.session(ALL_TENANTS) as session:
                jobs_store.finish(session, job.name, now, finished_at, error)
        except Exception:  # noqa: BLE001 - the run happened; only its record is missing
            log.warning("tick: could not record the end of job %s", job.name, exc_info=True)
        return effects

    def _run(self, job: Job, now: datetime) -> tuple[list[Effect], str | None]:
        """One run of `job` in its own transaction: its effects, or no effects and the error."""
        try:
            with self.services.db.session(ALL_TENANTS) as session:
                return list(job.run(JobCtx(self.services, session, now)) or []), None
        except Exception as exc:  # noqa: BLE001
            log.exception("job %s failed", job.name)
            return [], f"{type(exc).__name__}: {exc}"

    def run_job(self, job: Job, now: datetime | None = None) -> list[Effect]:
        """Run one job now, whatever its period and whoever ran it last (tests); failures are
        logged, never raised. Production code ticks (`tick`)."""
        return self._run(job, now or self.services.clock.now())[0]

    def run_all_jobs(self) -> list[Effect]:
        """Every job, now, ignoring periods (tests that want "run everything")."""
        effects: list[Effect] = []
        for job in self.registry.jobs:
            effects += self.run_job(job)
        return effects


def workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(select(Workspace).order_by(Workspace.id)))
