"""Requests for spaces and access: `request channel #tenders-aero "purpose" [private]`
(`requête canal …`) and `request access #direction` (`requête accès …`).

A new channel goes to the author's référents (department, else site, else everywhere, else
the admins); access to a channel to its référents and animators (else the same chain). They
get the request in their grouped DM with approve / decline buttons. On approval the bot makes
the change where the platform lets a bot do it (a `SpaceChange` effect: Slack
conversations.create / invite, the console itself); where it cannot (Teams), the approver is
told exactly what to click. When the author joins the channel (the platform's member event),
the request is done and the author is told. Every decision is in the audit log.

Privacy: a request is read by its author, the people it was routed to and the admins
(store/suggestions.py `request_readable_by`).
"""
from __future__ import annotations

import re
import unicodedata

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import MARK_OPEN, one_line, shorten
from bot.types import Action, Card, ConversationRef, Effect, Form, FormField, IncomingMessage, MembersChanged, Reply, SpaceChange
from handlers.contribution_common import written_text
from handlers.notifications.budget import notify
from handlers.suggestions import route_text
from store import referents as referents_store
from store import suggestions as store
from store.models.core import Conversation, Person
from store.models.referents import SpaceRequest

NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,79}$")  # what Slack accepts (and Teams shows well)
PURPOSE_MIN = 3
PURPOSE_MAX = 250  # Slack's channel purpose limit
REASON_MAX = 1000
PRIVATE_WORDS = {"private", "prive", "privé", "privée", "privee"}
_QUOTED = re.compile(r"[\"“«]\s*(.+?)\s*[\"”»]", re.DOTALL)


def _slug(name: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_\-]+", "-", plain)).strip("-")[:80]


def _actions(r: SpaceRequest) -> tuple[Action, ...]:
    return (Action("requests.button.approve", f"request approve {r.number}", "primary"),
            Action("requests.button.decline", f"request decline {r.number}", "danger"))


def _what(ctx: Ctx, r: SpaceRequest, locale: str) -> str:
    """The request in a few words, in `locale`."""
    if r.kind == "channel":
        key = "requests.what.private_channel" if r.private else "requests.what.channel"
        return ctx.t_in(locale, key, name=r.name)
    conv = ctx.session.get(Conversation, r.conversation_id) if r.conversation_id else None
    return ctx.t_in(locale, "requests.what.access", channel=ctx.channel_link(conv) if conv else r.name)


def _route_and_file(ctx: Ctx, msg: IncomingMessage, *, kind: str, name: str, purpose: str, private: bool,
                    conv: Conversation | None) -> list[Effect]:
    if conv is not None:  # access: the channel's référents and animators first
        route = referents_store.responsible(ctx.session, ctx.actor, conv, ctx.settings.admins, exclude={ctx.actor.id},
                                            channel_roles=("referent", "animator"))
        if conv.kind != "public" and route.kind != "channel":
            # a private channel's existence is not for a department's référent: its people, else the admins
            route = referents_store.Route("admins", "", tuple(p for p in referents_store.admins(ctx.session, ctx.settings.admins)
                                                              if p.id != ctx.actor.id), route.missed[:1])
    else:
        route = referents_store.responsible(ctx.session, ctx.actor, None, ctx.settings.admins, exclude={ctx.actor.id})
    if not route.people:
        raise UserError("suggestions.nobody", admins=", ".join(ctx.settings.admins) or ctx.t("error.no_one"))
    now = ctx.now()
    r = store.create_request(ctx.session, ctx.tenant, source_key=f"{msg.conversation.id}:{msg.id}", kind=kind,
                             author_id=ctx.actor.id, name=name, purpose=purpose, private=private,
                             conversation_id=conv.id if conv else None, route=route.kind, route_value=route.value, now=now)
    if r is None:
        return []
    store.route_request(ctx.session, ctx.tenant, r.id, [p.id for p in route.people], now)
    effects: list[Effect] = [ctx.answer(ctx.reply("requests.filed", private=True, id=r.number, what=_what(ctx, r, ctx.locale),
                                                  route=route_text(ctx, route)))]
    for person in route.people:
        params = {"id": r.number, "author": ctx.name(ctx.actor), "what": _what(ctx, r, ctx.locale_of(person)),
                  "purpose": shorten(purpose, 250) or "—"}
        effects += notify(ctx, person, "requests.notify.new", params=params, thread_key=f"request:{r.number}:new",
                          actions=_actions(r))
    return effects


def channel_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    values = msg.form_values or {}
    text = args.strip()
    quoted = _QUOTED.search(text)
    purpose = (quoted.group(1) if quoted else str(values.get("purpose", ""))).strip()
    rest = (text[: quoted.start()] + " " + text[quoted.end():]) if quoted else text
    words = rest.split()
    private = any(w.casefold() in PRIVATE_WORDS for w in words) or str(values.get("private", "")).lower() in ("yes", "true", "on")
    names = [w for w in words if w.casefold() not in PRIVATE_WORDS]
    if ctx.find_channel(rest) is not None or any(w.startswith(MARK_OPEN) or w.startswith("(" + MARK_OPEN) for w in names):
        existing = ctx.find_channel(rest)
        raise UserError("requests.channel_exists", channel=ctx.channel_link(existing) if existing else names[0])
    name = (names[0].lstrip("#") if names else str(values.get("name", "")).lstrip("#")).strip()
    if not quoted and len(names) > 1:  # the purpose without quotes
        purpose = purpose or " ".join(names[1:])
    if names and not name:
        raise UserError("requests.name_invalid", name=names[0][:80])
    if not name:
        form = Form(title=ctx.t("requests.form.title"), submit_command="request channel", submit_label=ctx.t("requests.form.submit"),
                    fields=(FormField("name", ctx.t("requests.form.name"), required=True, max_length=80),
                            FormField("purpose", ctx.t("requests.form.purpose"), kind="multiline", required=True,
                                      max_length=PURPOSE_MAX),
                            FormField("private", ctx.t("requests.form.private"), kind="checkbox")))
        return ctx.reply("requests.form", private=True, form=form)
    if not NAME.match(name):
        suggestion = _slug(name)
        if suggestion and NAME.match(suggestion):
            raise UserError("requests.name_invalid_try", name=name[:80], suggestion=suggestion)
        raise UserError("requests.name_invalid", name=name[:80])
    existing_conv = referents_store.conversation_named(ctx.session, name)
    if existing_conv is not None:
        raise UserError("requests.channel_exists", channel=ctx.channel_link(existing_conv))
    if len(one_line(purpose)) < PURPOSE_MIN:
        raise UserError("requests.purpose_required", usage=ctx.t("requests.channel_usage"))
    if len(purpose) > PURPOSE_MAX:
        raise UserError("requests.purpose_too_long", limit=PURPOSE_MAX, length=len(purpose))
    pending = store.pending_for(ctx.session, ctx.actor.id, "channel", name=name)
    if pending is not None:
        raise UserError("requests.already_requested", id=pending.number)
    return _route_and_file(ctx, msg, kind="channel", name=name, purpose=purpose, private=private, conv=None)


def access_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    conv = ctx.find_channel(args)
    if conv is None or conv.kind == "dm":
        raise UserError("error.unknown_channel", channel=args.strip()[:60] or "#…")
    if referents_store.is_member(ctx.session, conv.id, ctx.actor.id):
        raise UserError("requests.already_member", channel=ctx.channel_link(conv))
    pending = store.pending_for(ctx.session, ctx.actor.id, "access", conversation_id=conv.id)
    if pending is not None:
        raise UserError("requests.already_requested", id=pending.number)
    reason = one_line(re.sub(r"\S*" + MARK_OPEN + r"[^\s]*", "", args)).strip(" \"“”«»")
    return _route_and_file(ctx, msg, kind="access", name=conv.name, purpose=reason[:PURPOSE_MAX], private=conv.kind != "public",
                           conv=conv)


# Decisions ----------------------------------------------------------------------------
def _decider_arg(ctx: Ctx, args: str) -> tuple[SpaceRequest, str]:
    number, rest = ctx.numbered(args)
    if number is None:
        raise UserError("requests.id_required", usage=ctx.t("requests.decide_usage"))
    r = store.space_request(ctx.session, number, reader_id=ctx.actor.id, admin=ctx.is_admin)
    if r is None:  # also someone else's request they may not read: not even its existence shows
        raise UserError("requests.not_found", id=number)
    if not ctx.is_admin and ctx.actor.id not in store.request_routed(ctx.session, r.id):
        raise UserError("requests.not_decider", id=r.number)
    if r.status != "pending":
        raise UserError(f"requests.already_{r.status}", id=r.number)
    return r, rest


def approve_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    r, _ = _decider_arg(ctx, args)
    author = ctx.session.get(Person, r.author_id)
    if author is None:
        raise UserError("requests.not_found", id=r.number)
    conv = ctx.session.get(Conversation, r.conversation_id) if r.conversation_id else None
    if r.kind == "channel" and referents_store.conversation_named(ctx.session, r.name) is not None:
        raise UserError("requests.channel_exists", channel="#" + r.name)
    if r.kind == "access" and conv is None:
        raise UserError("requests.channel_gone", id=r.number)
    if not store.decide(ctx.session, r.id, status="approved", by=ctx.actor.id, reason="", now=ctx.now()):
        ctx.session.refresh(r)
        raise UserError(f"requests.already_{r.status}", id=r.number)
    ctx.audit("request.approved", f"request {r.number} {r.kind} {r.name}")
    params = {"id": r.number, "name": r.name, "author": ctx.name(author), "purpose": r.purpose or "—",
              "privacy": ctx.t_for(ctx.actor, "requests.privacy.private" if r.private else "requests.privacy.public")}
    if r.kind == "channel":
        target = ConversationRef(ctx.platform, ctx.tenant, "", "private" if r.private else "public", name=r.name)
        change = SpaceChange("create", target, people=(ctx.user_ref(author),), purpose=r.purpose, report_to=ctx.user_ref(ctx.actor),
                             failed_key="requests.platform_failed", manual_key="requests.manual.create", params=params)
    else:
        assert conv is not None
        params["channel"] = conv.name
        change = SpaceChange("invite", ctx.ref_of(conv), people=(ctx.user_ref(author),), report_to=ctx.user_ref(ctx.actor),
                             failed_key="requests.platform_failed", manual_key="requests.manual.access", params=params)
    effects: list[Effect] = [ctx.answer(ctx.reply("requests.approved", private=True, id=r.number, what=_what(ctx, r, ctx.locale),
                                                  author=ctx.name(author)))]
    effects += notify(ctx, author, "requests.notify.approved",
                      params={"id": r.number, "name": ctx.name(ctx.actor), "what": _what(ctx, r, ctx.locale_of(author))},
                      thread_key=f"request:{r.number}:approved")
    effects.append(change)
    return effects


def decline_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    r, rest = _decider_arg(ctx, args)
    reason = written_text(ctx, msg, rest, field="reason", limit=REASON_MAX,
                          form_title=ctx.t("requests.form.decline_title", id=r.number), field_label=ctx.t("requests.form.reason"),
                          submit_label=ctx.t("requests.form.submit_decline"), submit_command=f"request decline {r.number}",
                          form_key="requests.decline_form", id=r.number)
    if isinstance(reason, Reply):
        return reason
    if not store.decide(ctx.session, r.id, status="declined", by=ctx.actor.id, reason=reason, now=ctx.now()):
        ctx.session.refresh(r)
        raise UserError(f"requests.already_{r.status}", id=r.number)
    ctx.audit("request.declined", f"request {r.number} {r.kind} {r.name}")
    author = ctx.session.get(Person, r.author_id)
    effects: list[Effect] = [ctx.answer(ctx.reply("requests.declined", private=True, id=r.number))]
    if author is not None:
        effects += notify(ctx, author, "requests.notify.declined",
                          params={"id": r.number, "name": ctx.name(ctx.actor), "what": _what(ctx, r, ctx.locale_of(author)),
                                  "reason": shorten(reason, 600)}, thread_key=f"request:{r.number}:declined")
    return effects


def list_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    rows = store.requests_of(ctx.session, ctx.actor.id, admin=ctx.is_admin)
    if not rows:
        return ctx.reply("requests.list_empty", private=True)
    lines = []
    for r in rows:
        author = ctx.session.get(Person, r.author_id)
        lines.append(ctx.t("requests.list_line", id=r.number, what=_what(ctx, r, ctx.locale),
                           status=ctx.t(f"requests.status.{r.status}"), author=ctx.name(author) if author else "?"))
    card = Card(title=ctx.t("requests.list_title"), body="\n".join(lines))
    return ctx.reply("requests.list", private=True, card=card, count=len(rows))


# Done: the author joined ---------------------------------------------------------------------
def on_members_changed(ctx: Ctx, event: MembersChanged) -> list[Effect] | None:
    conv = ctx.conversation
    if conv is None or not event.joined:
        return None
    ids = referents_store.people_ids(ctx.session, [u.id for u in event.joined])
    effects: list[Effect] = []
    for r in store.approved_waiting(ctx.session, conversation_id=conv.id, name=conv.name, person_ids=ids):
        if not store.mark_done(ctx.session, r.id, ctx.now(), conversation_id=conv.id):
            continue
        ctx.audit("request.done", f"request {r.number} {r.kind} {conv.id}")
        author = ctx.session.get(Person, r.author_id)
        if author is not None:
            effects += notify(ctx, author, "requests.notify.done", params={"id": r.number, "channel": ctx.channel_link(conv)},
                              thread_key=f"request:{r.number}:done")
    return effects


def register(r: Registry) -> None:
    g = "accompaniment"
    r.command(CommandSpec("request channel", "requête canal", channel_command, "requests.channel_help", "requests.channel_usage",
                          aliases=("demander canal", "demander un canal", "request a channel"), group=g))
    r.command(CommandSpec("request access", "requête accès", access_command, "requests.access_help", "requests.access_usage",
                          aliases=("demander accès", "demander l'accès"), group=g, needs_args=True))
    r.command(CommandSpec("request approve", "requête approuver", approve_command, "requests.approve_help",
                          "requests.decide_usage", group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("request decline", "requête refuser", decline_command, "requests.decline_help",
                          "requests.decide_usage", group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("requests", "requêtes", list_command, "requests.list_help", "requests.list_usage", group=g))
    r.on(MembersChanged, on_members_changed)
