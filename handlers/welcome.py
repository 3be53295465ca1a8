"""Accompaniment of newcomers.

- A person joining a channel for the first time gets one welcome DM, through the notification
  budget (counted in their daily cap, held during their quiet hours or snooze, in their
  language): the channel's purpose (its welcome text, else what it was requested for), its
  animators and référents, and three things to do right now. Not for the bot, not for a bulk
  member sync (the bot arriving in a channel, a privacy change), and never twice.
- `welcome set #sales [en|fr] <text>`, `welcome off|on #sales`, `welcome show #sales`
  (`accueil définir|désactiver|activer|voir`): the channel's welcome text in each language, by
  its animators (and référents, admins).
- `tour` (`visite`): the five most useful commands in three short steps, with buttons.
- A person's first message in a channel reaches its animators in their next grouped DM, so
  they can thank them.
"""
from __future__ import annotations

from datetime import timedelta

from babel.lists import format_list
from sqlalchemy import event as orm_event
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from bot.context import Ctx, UserError
from bot.registry import CommandSpec, Registry
from bot.text import shorten
from bot.types import Action, Card, Effect, IncomingMessage, MembersChanged, Reply
from handlers.notifications.budget import notify
from store import referents as store
from store.memo import memo
from store.models.core import Conversation, Person, Role

TEXT_MAX = 1500  # one Slack section holds 3,000 characters; the DM adds the channel's people
BULK = 5  # more people joining in one event is a member sync, not arrivals
LANGS = {"en": "en", "english": "en", "anglais": "en", "fr": "fr", "french": "fr", "francais": "fr", "français": "fr"}
TOUR_STEPS = 3


# The welcome DM -------------------------------------------------------------------------------
def _names(ctx: Ctx, people: list[Person], locale: str) -> str:
    return format_list([ctx.name(p) for p in people], locale=locale) if people else ctx.t_in(locale, "welcome.nobody")


def welcome_params(ctx: Ctx, conv: Conversation, person: Person) -> dict[str, object]:
    locale = ctx.locale_of(person)
    row = store.welcome_text(ctx.session, conv.id)
    text = ""
    if row is not None:
        text = getattr(row, f"text_{locale}", "") or row.text_en or row.text_fr
    purpose = text or store.request_purpose(ctx.session, conv.id) or ctx.t_in(locale, "welcome.no_purpose")
    animators = [p for p in store.of_channel(ctx.session, conv, ("animator",)) if p.id != person.id]
    referents = [p for p in store.of_channel(ctx.session, conv, ("referent",)) if p.id != person.id]
    return {"channel": conv.name, "purpose": purpose, "animators": _names(ctx, animators, locale),
            "referents": _names(ctx, referents, locale)}


def on_members_changed(ctx: Ctx, event: MembersChanged) -> list[Effect] | None:
    conv = ctx.conversation
    if conv is None or conv.kind == "dm" or event.bot_joined or not event.joined or len(event.joined) > BULK:
        return None
    row = store.welcome_text(ctx.session, conv.id)
    if row is not None and not row.enabled:
        return None
    now = ctx.now()
    effects: list[Effect] = []
    for person in ctx.session.scalars(select(Person).where(Person.external_id.in_([u.id for u in event.joined if not u.is_bot]))):
        if person.is_bot:
            continue
        if store.recorded(ctx.session, ctx.tenant, conv.id, person, "joined"):
            continue  # welcomed before, as this process knows: no statement
        since = store.joined_at(ctx.session, conv.id, person.id)
        if since is not None and since < now - timedelta(minutes=1):
            continue  # already a member before this event: not an arrival
        if not store.first_time(ctx.session, ctx.tenant, conv.id, person, "joined", now):
            continue
        effects += notify(ctx, person, "welcome.dm", params=welcome_params(ctx, conv, person), thread_key=f"welcome:{conv.id}",
                          actions=(Action("welcome.button.tour", "tour"),))
    return effects


# First-time contributors ------------------------------------------------------------------------
# Every ambient message of a channel passes here: the common case (a channel without animators,
# someone who spoke there before) makes no statement. Which channels have animators is read once
# per session (an inbox batch: store/memo.py), read again after the session writes a role or a
# person; who is recorded as having spoken is remembered by the process (store.referents.recorded).
_ANIMATORS = "welcome.animators"


def _forget_animators(session: Session, _context: object) -> None:
    """A role, or whether a person is active or a bot, was written: who animates what is read again."""
    if (any(isinstance(o, (Role, Person)) for o in (*session.new, *session.deleted))
            or any(isinstance(o, Role) or (isinstance(o, Person) and _status_changed(o)) for o in session.dirty)):
        memo(session, _ANIMATORS).clear()


def _status_changed(person: Person) -> bool:
    attrs = inspect(person).attrs
    return attrs.active.history.has_changes() or attrs.is_bot.history.has_changes()


def _read_animators(ctx: Ctx) -> dict[object, object]:
    read = memo(ctx.session, _ANIMATORS)
    if not ctx.session.info.get(_ANIMATORS):
        ctx.session.info[_ANIMATORS] = True
        orm_event.listen(ctx.session, "after_flush", _forget_animators)
    return read


def _animated(ctx: Ctx, conv: Conversation) -> bool:
    """Whether the channel has any animator (all channels' in one query per session)."""
    read = _read_animators(ctx)
    key = (ctx.tenant, None)
    if key not in read:
        read[key] = store.animated_channels(ctx.session)
    return conv.id in read[key]


def _animators(ctx: Ctx, conv: Conversation) -> list[Person]:
    """The channel's animators, read once per session."""
    read = _read_animators(ctx)
    key = (ctx.tenant, conv.id)
    if key not in read:
        read[key] = store.of_channel(ctx.session, conv, ("animator",))
    return read[key]  # type: ignore[return-value]


def on_message(ctx: Ctx, msg: IncomingMessage) -> list[Effect] | None:
    conv = ctx.conversation
    if (msg.addressed or msg.backfill or msg.sender.is_bot or ctx.actor.is_bot or conv is None or conv.kind == "dm"
            or not msg.text.strip()):
        return None
    if not _animated(ctx, conv):  # nobody to tell: nothing written for a channel without animators
        return None
    now = ctx.now()
    if not store.first_time(ctx.session, ctx.tenant, conv.id, ctx.actor, "contributed", now, preload=True):
        return None
    if store.posted_before(ctx.session, conv.id, ctx.actor.id, msg.id):
        return None  # a regular who had not been seen since this feature arrived
    effects: list[Effect] = []
    for animator in _animators(ctx, conv):
        if animator.id == ctx.actor.id:
            continue
        effects += notify(ctx, animator, "welcome.first_contribution",
                          params={"name": ctx.name(ctx.actor), "channel": conv.name, "text": shorten(msg.text, 120)},
                          thread_key=f"first:{conv.id}:{ctx.actor.id}")
    return effects


# Animators' settings --------------------------------------------------------------------------
def _channel(ctx: Ctx, args: str) -> Conversation:
    conv = ctx.find_channel(args)
    if conv is None:
        conv = ctx.conversation if ctx.conversation is not None and ctx.conversation.kind != "dm" else None
    if conv is None or conv.kind == "dm":
        raise UserError("error.unknown_channel", channel=args.strip()[:60] or "#…")
    ctx.require_role(("animator", "referent"), conv, "welcome.action_set")
    return conv


def _rest(args: str) -> str:
    """The text after the channel (its link or #name) in `args`."""
    words = args.split(maxsplit=1)
    if words and (words[0].startswith("#") or words[0].startswith("\u27e6") or words[0].startswith("(\u27e6")):
        return words[1] if len(words) > 1 else ""
    return args


def set_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    conv = _channel(ctx, args)
    rest = _rest(args.strip()).strip()
    first, _, text = rest.partition(" ")
    locale = LANGS.get(first.casefold().rstrip(":"))
    if locale is None:
        locale, text = ctx.locale, rest
    text = text.strip()
    if not text:
        raise UserError("welcome.text_required", usage=ctx.t("welcome.set_usage"))
    if len(text) > TEXT_MAX:
        raise UserError("welcome.too_long", limit=TEXT_MAX, length=len(text))
    row = store.set_welcome(ctx.session, ctx.tenant, conv.id, by=ctx.actor.id, now=ctx.now(), locale=locale, text=text)
    ctx.audit("welcome.set", f"{conv.id} {locale}")
    other = "fr" if locale == "en" else "en"
    missing = not getattr(row, f"text_{other}")
    return ctx.reply("welcome.set_missing" if missing else "welcome.set", private=True, channel=ctx.channel_link(conv),
                     language=ctx.t(f"lang.name.{locale}"), other=ctx.t(f"lang.name.{other}"))


def switch_command(ctx: Ctx, msg: IncomingMessage, args: str, *, enabled: bool) -> Reply:
    conv = _channel(ctx, args)
    store.set_welcome(ctx.session, ctx.tenant, conv.id, by=ctx.actor.id, now=ctx.now(), enabled=enabled)
    ctx.audit("welcome.switch", f"{conv.id} {'on' if enabled else 'off'}")
    return ctx.reply("welcome.on" if enabled else "welcome.off", private=True, channel=ctx.channel_link(conv))


def off_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return switch_command(ctx, msg, args, enabled=False)


def on_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    return switch_command(ctx, msg, args, enabled=True)


def show_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """What a newcomer would read, in the asker's language (anyone may look)."""
    conv = ctx.find_channel(args) or (ctx.conversation if ctx.conversation is not None and ctx.conversation.kind != "dm" else None)
    if conv is None or conv.kind == "dm":
        raise UserError("error.unknown_channel", channel=args.strip()[:60] or "#…")
    row = store.welcome_text(ctx.session, conv.id)
    params = welcome_params(ctx, conv, ctx.actor)
    state = "welcome.state_off" if row is not None and not row.enabled else "welcome.state_on"
    return ctx.reply("welcome.shown", private=True, card=Card(title=ctx.t("welcome.preview_title", channel=conv.name),
                                                                body=ctx.t("welcome.dm", **params), footer=ctx.t(state)),
                     channel=ctx.channel_link(conv))


# Tour ---------------------------------------------------------------------------------------------
def tour_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    step = ctx.number_in(args.strip(), 1, TOUR_STEPS) if args.strip() else 1
    if step is None:
        raise UserError("welcome.tour_step", last=TOUR_STEPS)
    actions = [Action(ctx.t(f"welcome.tour.{step}.try"), ctx.t(f"welcome.tour.{step}.command"), "primary")]
    if step < TOUR_STEPS:
        actions.append(Action(ctx.t("welcome.button.next"), f"tour {step + 1}"))
    card = Card(title=ctx.t("welcome.tour_title", step=step, last=TOUR_STEPS), body=ctx.t(f"welcome.tour.{step}.body"),
                actions=tuple(actions))
    return ctx.reply("welcome.tour", private=True, card=card, step=step, last=TOUR_STEPS)


def register(r: Registry) -> None:
    g = "accompaniment"
    r.command(CommandSpec("welcome set", "accueil définir", set_command, "welcome.set_help", "welcome.set_usage",
                          group=g, needs_args=True))
    r.command(CommandSpec("welcome off", "accueil désactiver", off_command, "welcome.off_help", "welcome.switch_usage",
                          group=g, hidden=True))
    r.command(CommandSpec("welcome on", "accueil activer", on_command, "welcome.on_help", "welcome.switch_usage",
                          group=g, hidden=True))
    r.command(CommandSpec("welcome show", "accueil voir", show_command, "welcome.show_help", "welcome.switch_usage", group=g))
    r.command(CommandSpec("tour", "visite", tour_command, "welcome.tour_help", "welcome.tour_usage",
                          aliases=("getting started", "premiers pas"), group=g))
    r.on(MembersChanged, on_members_changed)
    r.on(IncomingMessage, on_message)
