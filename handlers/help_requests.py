"""Help requests: `ask <question> [#topic]`, the "Ask the experts" message shortcut, and every
top-level message of a help channel. The bot answers in the thread with the three best
available experts and similar resolved requests; "I'll take it", "Resolved" and "Other experts"
buttons; a job escalates once to the channel's référents after the channel's delay in working
hours; on resolve the helper gains evidence and the asker can thank them in one click.

Privacy: a request asked in a private channel or group chat is routed to its members only
(`store.audience`); its asker is offered, privately, one button to share the question with
experts outside (`ask share <n>`), who then see the question and the asker's name, never the
conversation nor its thread."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Collection, Sequence

from sqlalchemy import select

from bot.context import Ctx, JobCtx, UserError
from handlers.expertise.lookup import Candidate, track_changes
from handlers.notifications.budget import notify
from bot.registry import CommandSpec, Job, Registry
from bot.text import one_line, shorten
from bot.types import Action, Card, Effect, Form, FormField, IncomingMessage, Outbound, Reply
from bot.words import parse_switch, vocabulary
from handlers.contribution_common import claimed_escalations, conversation_zone, split_topics, strip_people
from handlers.help_routing import add_working_hours, detect_topics, pick_experts
from handlers.kudos import give
from store import help_requests as store
from store import people as people_store
from store.expertise import add_evidence
from store.models.contribution import HelpRequest, Kudos
from store.models.core import Conversation, Person

QUESTION_MIN = 3
QUESTION_MAX = 3000
ANSWER_MAX = 3000
SHOWN = 3
_HOURS = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(h|hours?|heures?)?$", re.IGNORECASE)


# Rendering ------------------------------------------------------------------------
def _conversation(ctx: Ctx, req: HelpRequest) -> Conversation | None:
    return ctx.session.get(Conversation, req.conversation_id) if req.conversation_id else None


def _outsiders(ctx: Ctx, req: HelpRequest, experts: Sequence[Candidate]) -> set[int]:
    """Experts outside the request's private conversation (reached because it was shared):
    a mention there would not reach them, so they get a DM without the conversation's link."""
    room = store.private_room(ctx.session, req)
    if room is None:
        return set()
    members = store.members_among(ctx.session, room.id, [c.person.id for c in experts])
    return {c.person.id for c in experts if c.person.id not in members}


def _expert_lines(ctx: Ctx, experts: Sequence[Candidate], locale: str, *, dm_only: bool, outside: Collection[int] = ()) -> str:
    tr = ctx.translator(locale)
    lines = []
    for c in experts:
        who = ctx.name(c.person) if dm_only or c.person.id in outside else ctx.mention(c.person)
        lines.append(tr("help_requests.expert_line", who=who, topics=", ".join(c.matched[:3]) or "—"))
    return "\n".join(lines)


def _routed_lines(ctx: Ctx, req: HelpRequest) -> str:
    """On later updates of the card: everyone already asked, by name (no new pings)."""
    people = people_store.people_by_ids(ctx.session, store.routed_ids(ctx.session, req.id))
    return "\n".join("• " + ctx.name(p) for p in sorted(people.values(), key=lambda p: ctx.name(p)))


def request_card(ctx: Ctx, req: HelpRequest, locale: str, *, experts: Sequence[Candidate] = (),
                 similar: Sequence[HelpRequest] = (), dm_only: bool = False, question_only: bool = False) -> Card:
    """`question_only`: for an expert outside the request's private conversation (it was shared
    with them): the question, who asked and its state, not the answer nor who else was asked."""
    tr = ctx.translator(locale)
    asker = ctx.session.get(Person, req.asker_id)
    fields: list[tuple[str, str]] = [(tr("help_requests.field.asker"), ctx.name(asker) if asker else "?"),
                                     (tr("help_requests.field.status"), tr(f"help_requests.status.{req.status}"))]
    if req.topics:
        fields.append((tr("help_requests.field.topics"), " ".join("#" + t.replace(" ", "") for t in split_topics(req.topics))))
    if req.claimer_id and req.status != "resolved":
        claimer = ctx.session.get(Person, req.claimer_id)
        fields.append((tr("help_requests.field.claimer"), ctx.name(claimer) if claimer else "?"))
    if req.status == "resolved":
        helper = ctx.session.get(Person, req.helper_id) if req.helper_id else None
        if helper is not None:
            fields.append((tr("help_requests.field.helper"), ctx.name(helper)))
        if req.answer and not question_only:
            fields.append((tr("help_requests.field.answer"), req.answer))
    if req.escalated_at is not None and req.status != "resolved":
        fields.append((tr("help_requests.field.escalated"), tr("help_requests.escalated_flag")))
    sections: list[tuple[str, str]] = []
    routed = "" if experts or question_only else _routed_lines(ctx, req)
    if experts:
        sections.append((tr("help_requests.section.experts"), _expert_lines(ctx, experts, locale, dm_only=dm_only)))
    elif routed and req.status != "resolved":
        sections.append((tr("help_requests.section.asked"), routed))
    elif req.status == "open" and not similar:
        sections.append((tr("help_requests.section.experts"), tr("help_requests.no_experts")))
    if similar:
        lines = [tr("help_requests.similar_line", id=s.number, question=shorten(s.question, 80), answer=shorten(s.answer, 200)) for s in similar]
        sections.append((tr("help_requests.section.similar"), "\n".join(lines)))
    actions: tuple[Action, ...] = ()
    if req.status != "resolved":
        take = () if req.status == "claimed" else (Action(tr("help_requests.button.take"), f"ask take {req.number}", "primary"),)
        actions = (*take, Action(tr("help_requests.button.resolve"), f"ask resolve {req.number}"),
                   Action(tr("help_requests.button.more"), f"ask more {req.number}"))
    return Card(title=tr("help_requests.card_title", id=req.number), body=shorten(req.question, 600), fields=tuple(fields),
                sections=tuple(sections), actions=actions, footer=tr("help_requests.card_footer") if req.status != "resolved" else "")


def card_outbound(ctx: Ctx, req: HelpRequest, *, experts: Sequence[Candidate] = (), similar: Sequence[HelpRequest] = ()) -> Outbound:
    """The request's card in its thread; the anchor makes later sends update it in place."""
    conv = _conversation(ctx, req) or ctx.conversation
    assert conv is not None
    locale = ctx.locale_in(conv)
    tr = ctx.translator(locale)
    card = request_card(ctx, req, locale, experts=experts, similar=similar, dm_only=conv.kind == "dm")
    count = len(experts) or len(store.routed_ids(ctx.session, req.id))
    text = tr("help_requests.card", id=req.number, status=tr(f"help_requests.status.{req.status}"), count=count)
    reply = Reply(text=text, card=card, key="help_requests.card", params={"id": req.number, "count": count})
    return Outbound(reply=reply, to=ctx.ref_of(conv), thread_id=req.thread_id or None, anchor=f"help:{req.number}")


def _thread_post(ctx: Ctx, req: HelpRequest, key: str, **params: object) -> Outbound:
    conv = _conversation(ctx, req) or ctx.conversation
    assert conv is not None
    tr = ctx.translator(ctx.locale_in(conv))
    reply = Reply(text=tr(key, **params), key=key, params=dict(params))
    return Outbound(reply=reply, to=ctx.ref_of(conv), thread_id=req.thread_id or None)


def _link(req: HelpRequest) -> str:
    return req.permalink or f"#{req.number}"


def _ping_experts(ctx: Ctx, req: HelpRequest, experts: Sequence[Candidate], *, dm_all: bool,
                  outside: Collection[int] = ()) -> list[Effect]:
    """Experts who do not accept mentions (or everyone, for a request made in a DM) get a DM.
    Those `outside` its private conversation get the shared question only: no link into it."""
    asker = ctx.session.get(Person, req.asker_id)
    effects: list[Effect] = []
    to_dm = [c for c in experts if dm_all or not c.person.accepts_mentions or c.person.id in outside]
    people = people_store.people_by_ids(ctx.session, [c.person.id for c in to_dm])
    for c in to_dm:
        if c.person.id not in people:
            continue
        params = {"id": req.number, "asker": ctx.name(asker) if asker else "?", "question": shorten(req.question, 200)}
        if c.person.id in outside:
            key = "help_requests.notify.shared"
        else:
            key, params["link"] = "help_requests.notify.routed", _link(req)
        effects += notify(ctx, people[c.person.id], key, params=params, thread_key=f"help:{req.number}:routed", urgent=True,
                          actions=(Action("help_requests.button.take_short", f"ask take {req.number}", "primary"),))
    return effects


def _share_offer(ctx: Ctx, req: HelpRequest, room: Conversation) -> Outbound:
    """To the asker only: what sharing would show, and the one button that does it."""
    card = Card(title=ctx.t("help_requests.share_title"),
                body=ctx.t("help_requests.share_body", channel=ctx.channel_link(room), name=ctx.name(ctx.actor),
                           question=shorten(req.question, 300)),
                actions=(Action(ctx.t("help_requests.button.share"), f"ask share {req.number}"),))
    return ctx.answer(ctx.reply("help_requests.share_offer", private=True, card=card, id=req.number,
                                channel=ctx.channel_link(room)))


# Opening a request ----------------------------------------------------------------
def open_request(ctx: Ctx, msg: IncomingMessage, question: str, *, thread_id: str, source_key: str,
                 hashtags: Sequence[str] = ()) -> list[Effect]:
    question = question.strip()
    if len(one_line(question)) < QUESTION_MIN:
        raise UserError("help_requests.question_required", usage=ctx.t("help_requests.usage"))
    if len(question) > QUESTION_MAX:
        raise UserError("help_requests.question_too_long", limit=QUESTION_MAX, length=len(question))
    conv = ctx.conversation
    existing = store.by_source(ctx.session, source_key)
    if existing is not None:
        return [ctx.answer(ctx.reply("help_requests.already_asked", private=True, id=existing.number))]
    topics = detect_topics(ctx, question, hashtags)
    now = ctx.now()
    settings_row = store.channel_settings(ctx.session, conv.id) if conv is not None else None
    hours = settings_row.escalation_hours if settings_row and settings_row.escalation_hours else ctx.settings.help_escalation_hours
    escalate_at = add_working_hours(now, hours, conversation_zone(conv, ctx.actor.tz))
    req = store.create(ctx.session, ctx.tenant, source_key=source_key, asker_id=ctx.actor.id, question=question, topics=topics,
                       conversation_id=conv.id if conv else None, conversation_external_id=conv.external_id if conv else "",
                       thread_id=thread_id, permalink=msg.source_permalink or msg.permalink, escalate_at=escalate_at, now=now)
    if req is None:  # the same message delivered twice, concurrently
        return []
    experts = pick_experts(ctx, question, topics, exclude={ctx.actor.id}, count=SHOWN, audience=store.audience(ctx.session, req))
    store.record_routing(ctx.session, ctx.tenant, req.id, [c.person.id for c in experts], 1, now)
    in_dm = conv is None or conv.kind == "dm"
    similar = store.similar_resolved(ctx.session, question, topics, exclude=req.id, reader_id=ctx.actor.id,
                                     room_id=None if in_dm or conv is None else conv.id)
    effects: list[Effect] = [card_outbound(ctx, req, experts=experts, similar=similar)]
    effects += _ping_experts(ctx, req, experts, dm_all=in_dm)
    room = store.private_room(ctx.session, req)
    if room is not None:
        effects.append(_share_offer(ctx, req, room))
    return effects


def ask_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    values = msg.form_values or {}
    question = args.strip() or str(values.get("question", "")).strip() or msg.source_text.strip()
    if not question:
        form = Form(title=ctx.t("help_requests.form.title"), submit_command="ask", submit_label=ctx.t("help_requests.form.submit"),
                    fields=(FormField("question", ctx.t("help_requests.form.question"), kind="multiline", required=True,
                                      max_length=QUESTION_MAX),))
        return ctx.reply("help_requests.form", private=True, form=form)
    conv_id = msg.conversation.id
    if msg.via == "shortcut" and msg.source_id:
        # In the source message's thread: its root when it was itself a reply (the adapter says so).
        thread, source_key = msg.thread_id or msg.source_id, f"{conv_id}:{msg.source_id}"
    else:
        # A slash command has no message to thread under: the card then starts its own thread.
        thread = msg.thread_id or msg.conversation.thread_id or (msg.id if msg.via in ("message", "mention") else "")
        source_key = f"{conv_id}:{msg.id}"
    return open_request(ctx, msg, question, thread_id=thread or "", source_key=source_key, hashtags=msg.hashtags)


def help_channel_hook(ctx: Ctx, msg: IncomingMessage) -> list[Effect] | None:
    """Ambient: a top-level message in a help channel is a request; a reply in a request's
    thread by someone else counts as an answer (no escalation then)."""
    if msg.addressed or msg.backfill or msg.sender.is_bot or ctx.conversation is None or ctx.actor.is_bot:
        return None
    thread = msg.thread_id or msg.conversation.thread_id
    if thread and thread != msg.id:
        store.mark_answered(ctx.session, ctx.conversation.external_id, thread, ctx.actor.id, ctx.now())
        return None
    row = store.channel_settings(ctx.session, ctx.conversation.id)
    if row is None or not row.enabled or len(one_line(msg.text)) < QUESTION_MIN:
        return None
    source_key = f"{msg.conversation.id}:{msg.id}"
    if store.by_source(ctx.session, source_key) is not None:
        return None  # the platform delivered the same message again
    try:
        return open_request(ctx, msg, msg.text, thread_id=msg.id, source_key=source_key, hashtags=msg.hashtags)
    except UserError:
        return None


# Buttons --------------------------------------------------------------------------
def _request_arg(ctx: Ctx, args: str) -> tuple[HelpRequest, str]:
    req_id, rest = ctx.numbered(args)
    if req_id is None:
        raise UserError("help_requests.id_required", usage=ctx.t("help_requests.take_usage"))
    req = store.by_number(ctx.session, req_id, reader_id=ctx.actor.id)
    if req is None:  # also a request the actor may not read: not even its existence shows
        raise UserError("help_requests.not_found", id=req_id)
    return req, rest


def take_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    req, _ = _request_arg(ctx, args)
    if req.asker_id == ctx.actor.id:
        raise UserError("help_requests.own_take", id=req.number)
    if req.status == "resolved":
        raise UserError("help_requests.already_resolved", id=req.number)
    if not store.claim(ctx.session, req.id, ctx.actor.id, ctx.now()):
        ctx.session.refresh(req)
        claimer = ctx.session.get(Person, req.claimer_id) if req.claimer_id else None
        if claimer is not None and claimer.id == ctx.actor.id:
            raise UserError("help_requests.already_yours", id=req.number)
        raise UserError("help_requests.already_taken", id=req.number, name=ctx.name(claimer) if claimer else "?")
    ctx.session.refresh(req)
    effects: list[Effect] = [card_outbound(ctx, req), _thread_post(ctx, req, "help_requests.taken", id=req.number, name=ctx.name(ctx.actor))]
    asker = ctx.session.get(Person, req.asker_id)
    if asker is not None:
        effects += notify(ctx, asker, "help_requests.notify.taken", params={"id": req.number, "name": ctx.name(ctx.actor)},
                          thread_key=f"help:{req.number}:taken")
    if not store.can_read_answer(ctx.session, req, ctx.actor.id):
        # An expert reached by sharing cannot see the thread: they hear it here, and answer the asker directly.
        effects.append(ctx.answer(ctx.reply("help_requests.taken_outside", private=True, id=req.number,
                                            name=ctx.name(asker) if asker else "?")))
    return effects


def _resolve_form(ctx: Ctx, req: HelpRequest) -> Reply:
    claimer = ctx.session.get(Person, req.claimer_id) if req.claimer_id else None
    fields = (
        FormField("answer", ctx.t("help_requests.form.answer"), kind="multiline", required=True, max_length=ANSWER_MAX),
        FormField("helper", ctx.t("help_requests.form.helper"), value=f"@{claimer.external_id}" if claimer else ""),
    )
    form = Form(title=ctx.t("help_requests.form.resolve_title", id=req.number), submit_command=f"ask resolve {req.number}", fields=fields,
                submit_label=ctx.t("help_requests.form.submit_resolve"))
    return ctx.reply("help_requests.resolve_form", private=True, form=form, id=req.number)


def resolve_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    req, rest = _request_arg(ctx, args)
    if req.status == "resolved":
        raise UserError("help_requests.already_resolved", id=req.number)
    if ctx.actor.id not in (req.asker_id, req.claimer_id) and not ctx.is_admin:
        asker = ctx.session.get(Person, req.asker_id)
        raise UserError("help_requests.resolve_not_allowed", id=req.number, asker=ctx.name(asker) if asker else "?")
    values = msg.form_values or {}
    helper_text = str(values.get("helper", "")) if values else ""
    helpers, missing = ctx.find_people(f"{rest} {helper_text}")
    if missing:
        raise UserError("error.unknown_person", who=", ".join(missing))
    answer = one_line(strip_people(rest)) or str(values.get("answer", "")).strip()
    if not answer:
        return _resolve_form(ctx, req)
    if len(answer) > ANSWER_MAX:
        raise UserError("help_requests.answer_too_long", limit=ANSWER_MAX, length=len(answer))
    helper = helpers[0] if helpers else (ctx.session.get(Person, req.claimer_id) if req.claimer_id else None)
    if helper is None and ctx.actor.id != req.asker_id:
        helper = ctx.actor
    if helper is not None and (helper.id == req.asker_id or helper.is_bot):
        helper = None
    now = ctx.now()
    if not store.resolve(ctx.session, req.id, by=ctx.actor.id, helper_id=helper.id if helper else None, answer=answer, now=now):
        raise UserError("help_requests.already_resolved", id=req.number)
    ctx.session.refresh(req)
    if helper is not None:
        conv = _conversation(ctx, req)
        # The privacy contract filters evidence by its conversation; none (a DM) means anyone may
        # read it, so then no text is kept.
        shareable = conv is not None and conv.kind != "dm"
        wrote = False
        for topic in split_topics(req.topics):
            wrote |= add_evidence(ctx.session, ctx.tenant, helper.id, topic, "help", now, source_ref=f"help:{req.number}",
                                  conversation_id=conv.id if shareable and conv else None,
                                  snippet=shorten(req.question, 280) if shareable else "")
        if wrote:
            track_changes(ctx)
    effects: list[Effect] = [card_outbound(ctx, req),
                             _thread_post(ctx, req, "help_requests.resolved_post", id=req.number,
                                          name=ctx.name(helper) if helper else ctx.name(ctx.actor))]
    asker = ctx.session.get(Person, req.asker_id)
    if helper is not None and asker is not None:
        if asker.id == ctx.actor.id:
            card = Card(title=ctx.t("help_requests.thank_title"), body=ctx.t("help_requests.thank_body", name=ctx.name(helper)),
                        actions=(Action(ctx.t("help_requests.button.thank", name=ctx.name(helper)), f"ask thank {req.number}", "primary"),))
            effects.append(ctx.answer(ctx.reply("help_requests.resolved", private=True, card=card, id=req.number,
                                                name=ctx.name(helper))))
        else:
            effects.append(ctx.answer(ctx.reply("help_requests.resolved_by_helper", private=True, id=req.number)))
            effects += notify(ctx, asker, "help_requests.notify.resolved", params={"id": req.number, "name": ctx.name(helper)},
                              thread_key=f"help:{req.number}:resolved",
                              actions=(Action("help_requests.button.thank_short", f"ask thank {req.number}", "primary"),))
    else:
        effects.append(ctx.answer(ctx.reply("help_requests.resolved_alone", private=True, id=req.number)))
    return effects


def thank_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    """The one-click thanks after a resolve: a kudos to the helper on the request's topics."""
    req, _ = _request_arg(ctx, args)
    if req.asker_id != ctx.actor.id:
        raise UserError("help_requests.thank_not_asker", id=req.number)
    helper = ctx.session.get(Person, req.helper_id) if req.helper_id else None
    if req.status != "resolved" or helper is None:
        raise UserError("help_requests.thank_no_helper", id=req.number)
    done = ctx.session.scalar(select(Kudos.id).where(Kudos.help_request_id == req.id, Kudos.giver_id == ctx.actor.id).limit(1))
    if done is not None:
        raise UserError("help_requests.already_thanked", id=req.number, name=ctx.name(helper))
    if store.can_read(ctx.session, req, helper.id):
        reason = ctx.t("help_requests.thanks_reason", id=req.number, question=shorten(req.question, 120))
    else:  # the kudos reaches the helper: not a private conversation's question they cannot read
        reason = ctx.t("help_requests.thanks_reason_private", id=req.number)
    return give(ctx, [helper], reason, split_topics(req.topics), help_request_id=req.id)


def more_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    req, _ = _request_arg(ctx, args)
    if req.status == "resolved":
        raise UserError("help_requests.already_resolved", id=req.number)
    return _widen(ctx, req, round_=2, key="help_requests.more", empty_key="help_requests.no_more")


def _widen(ctx: Ctx, req: HelpRequest, *, round_: int, key: str, empty_key: str, extra: str = "") -> list[Effect]:
    """The next experts, never those already asked; posted in the thread."""
    exclude = set(store.routed_ids(ctx.session, req.id)) | {req.asker_id}
    experts = pick_experts(ctx, req.question, split_topics(req.topics), exclude=exclude, count=SHOWN,
                           audience=store.audience(ctx.session, req))
    conv = _conversation(ctx, req)
    locale = ctx.locale_in(conv)
    if not experts:
        if extra:
            none = ctx.t_in(locale, "help_requests.no_experts")
            return [_thread_post(ctx, req, key, id=req.number, experts=none, referents=extra)]
        return [_thread_post(ctx, req, empty_key, id=req.number)]
    store.record_routing(ctx.session, ctx.tenant, req.id, [c.person.id for c in experts], round_, ctx.now())
    outside = _outsiders(ctx, req, experts)
    lines = _expert_lines(ctx, experts, locale, dm_only=conv is None or conv.kind == "dm", outside=outside)
    params: dict[str, object] = {"id": req.number, "experts": lines}
    if extra:
        params["referents"] = extra
    effects: list[Effect] = [_thread_post(ctx, req, key, **params)]
    effects += _ping_experts(ctx, req, experts, dm_all=conv is None or conv.kind == "dm", outside=outside)
    return effects


# Escalation -------------------------------------------------------------------------
def escalate(jctx: JobCtx) -> list[Effect]:
    """Unanswered past the channel's delay: once, to the channel's référents, plus new experts."""
    effects: list[Effect] = []
    for session, ctx, req in claimed_escalations(jctx, store.due_escalations, store.claim_escalation, HelpRequest,
                                                 lambda r: r.asker_id):
        effects += _escalate_one(ctx, req, ctx.conversation)
        jctx.audit(session, "help.escalated", f"request {req.number}")
    return effects


def _escalate_one(ctx: Ctx, req: HelpRequest, conv: Conversation | None) -> list[Effect]:
    audience = store.audience(ctx.session, req)

    def holders(role: str) -> list[Person]:
        return [p for p in people_store.role_holders(ctx.session, (role,), conv)
                if p.id != req.asker_id and (audience is None or p.id in audience)]

    role, referents = "referent", holders("referent")
    if not referents:  # no référent: the animators, named as what they are
        role, referents = "animator", holders("animator")
    dm_only = conv is None or conv.kind == "dm"
    locale = ctx.locale_in(conv)
    label = ctx.t_in(locale, f"role.one.{role}")
    names = ", ".join(ctx.t_in(locale, "error.person_role", name=ctx.name(p) if dm_only else ctx.mention(p), role=label)
                      for p in referents) or ctx.t_in(locale, "help_requests.no_referent")
    effects: list[Effect] = [card_outbound(ctx, req)]
    effects += _widen(ctx, req, round_=3, key="help_requests.escalated", empty_key="help_requests.no_more", extra=names)
    asker = ctx.session.get(Person, req.asker_id)
    for person in referents:
        effects += notify(ctx, person, "help_requests.notify.escalated",
                          params={"id": req.number, "asker": ctx.name(asker) if asker else "?",
                                  "question": shorten(req.question, 200), "link": _link(req)},
                          thread_key=f"help:{req.number}:escalated", urgent=True,
                          actions=(Action("help_requests.button.take_short", f"ask take {req.number}", "primary"),))
    room = store.private_room(ctx.session, req)
    if asker is not None and room is not None and req.shared_at is None:
        effects += notify(ctx, asker, "help_requests.notify.share_offer",
                          params={"id": req.number, "channel": ctx.channel_link(room), "question": shorten(req.question, 200)},
                          thread_key=f"help:{req.number}:share_offer",
                          actions=(Action("help_requests.button.share", f"ask share {req.number}"),))
    return effects


def share_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    """The asker's one click: the question (and their name) may now reach experts outside the
    private conversation; the next experts, anywhere, are asked at once."""
    req, _ = _request_arg(ctx, args)
    if req.asker_id != ctx.actor.id:
        raise UserError("help_requests.share_not_asker", id=req.number)
    room = store.private_room(ctx.session, req)
    if room is None:
        raise UserError("help_requests.share_not_needed", id=req.number)
    if req.status == "resolved":
        raise UserError("help_requests.already_resolved", id=req.number)
    if not store.share(ctx.session, req.id, ctx.actor.id, ctx.now()):
        raise UserError("help_requests.already_shared", id=req.number)
    ctx.session.refresh(req)
    ctx.audit("help.shared", f"request {req.number}")
    effects = _widen(ctx, req, round_=2, key="help_requests.shared_post", empty_key="help_requests.shared_no_experts")
    effects.append(ctx.answer(ctx.reply("help_requests.shared", private=True, id=req.number)))
    return effects


# Lists and settings -----------------------------------------------------------------
def show_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    req, _ = _request_arg(ctx, args)  # a request the actor may not read is "not found"
    conv = _conversation(ctx, req)
    whole = store.can_read_answer(ctx.session, req, ctx.actor.id)
    card = request_card(ctx, req, ctx.locale, dm_only=True, question_only=not whole)
    if conv is None or conv.kind == "dm":
        where = ctx.t("help_requests.where_dm")
    else:
        where = ctx.channel_link(conv) if whole else ctx.t("help_requests.where_private")
    return ctx.reply("help_requests.shown", private=True, card=card, id=req.number, status=ctx.t(f"help_requests.status.{req.status}"),
                     where=where)


def list_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    mine = args.strip().casefold() in ("mine", "mes", "miennes")
    rows = store.open_requests(ctx.session, ctx.actor.id, asker_id=ctx.actor.id if mine else None)
    if not rows:
        return ctx.reply("help_requests.list_empty", private=True)
    lines = [ctx.t("help_requests.list_line", id=r.number, question=shorten(r.question, 80), status=ctx.t(f"help_requests.status.{r.status}"))
             for r in rows]
    card = Card(title=ctx.t("help_requests.list_title"), body="\n".join(lines), footer=ctx.t("help_requests.list_footer"))
    return ctx.reply("help_requests.list", private=True, card=card, count=len(rows))


def channel_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    conv = ctx.find_channel(args) or None
    if conv is None or conv.kind == "dm":
        raise UserError("error.unknown_channel", channel=args.strip()[:60] or "#…")
    ctx.require_role(("animator",), conv, "help_requests.action.channel")
    words = [w.casefold() for w in args.split() if not w.startswith(("#", "(#", "\u27e6"))]
    vocab = vocabulary(ctx.services.prompts)
    switches = [None if w[:1].isdigit() else parse_switch(w, vocab) for w in words]  # numbers are hours
    switch = next((s for s in switches if s is not None), None)
    hours: float | None = None
    for w, s in zip(words, switches):
        m = _HOURS.match(w)
        if m and s is None:
            hours = float(m.group(1).replace(",", "."))
    if switch is None:
        raise UserError("help_requests.channel_usage_error", usage=ctx.t("help_requests.channel_usage"))
    if hours is not None and not 0.5 <= hours <= 200:
        raise UserError("help_requests.channel_hours", given=hours)
    row = store.set_channel(ctx.session, conv.id, switch, hours, ctx.actor.id, ctx.now())
    ctx.audit("help.channel", f"{conv.id} {switch} {hours}")
    delay = row.escalation_hours or ctx.settings.help_escalation_hours
    key = "help_requests.channel_on" if switch else "help_requests.channel_off"
    return ctx.reply(key, channel=ctx.channel_link(conv), hours=delay)


def register(r: Registry) -> None:
    g = "help"
    r.command(CommandSpec("ask", "demande", ask_command, "help_requests.help", "help_requests.usage",
                          aliases=("aide-moi", "besoin d'aide", "help me", "ask the experts"), group=g))
    r.command(CommandSpec("ask take", "demande prendre", take_command, "help_requests.take_help", "help_requests.take_usage",
                          aliases=("ask claim", "je prends"), group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("ask resolve", "demande résolue", resolve_command, "help_requests.resolve_help", "help_requests.resolve_usage",
                          aliases=("resolve", "résolu", "resolu", "ask resolved", "demande resolue"), group=g, needs_args=True))
    r.command(CommandSpec("ask more", "demande autres experts", more_command, "help_requests.more_help", "help_requests.take_usage",
                          group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("ask thank", "demande remercier", thank_command, "help_requests.thank_help", "help_requests.take_usage",
                          group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("ask share", "demande partager", share_command, "help_requests.share_help", "help_requests.take_usage",
                          group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("ask show", "demande voir", show_command, "help_requests.show_help", "help_requests.take_usage",
                          group=g, needs_args=True))
    r.command(CommandSpec("asks", "demandes", list_command, "help_requests.list_help", "help_requests.list_usage",
                          aliases=("ask list",), group=g))
    r.command(CommandSpec("help channel", "canal d'aide", channel_command, "help_requests.channel_help", "help_requests.channel_usage",
                          aliases=("canal aide",), group="admin", needs_args=True))
    r.on(IncomingMessage, help_channel_hook)
    r.job(Job("help.escalate", timedelta(minutes=5), escalate))
