"""The ideas box: submit (typed, form or message shortcut), duplicates first, one card per
idea updated in place, votes and follows, the status workflow, lists, campaigns, and
anonymity (the author is shown to no one; admins can look it up through an audited command).

Privacy: an idea typed in a private channel or group chat stays there (its card is posted
there, it joins only that conversation's campaigns) and every read goes through
`store.ideas`, which shows a reader only the ideas they may read (an unreadable number
answers like a missing one). Ideas typed in a public channel or a DM go to the ideas box.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo


from bot.context import Ctx, JobCtx, UserError
from handlers.expertise.lookup import topics_in
from handlers.notifications.budget import notify
from bot.registry import CommandSpec, Job, Registry
from bot.text import extract_hashtags, norm_key, one_line, sanitize, shorten
from bot.words import parse_when, vocabulary
from bot.types import Action, Card, Effect, Form, FormField, IncomingMessage, Outbound, Reply
from handlers.contribution_common import actor_day_start, conversation_zone, end_of_day, truthy
from store import ideas as store
from store import people as people_store
from store.models.contribution import Idea, IdeaCampaign
from store.models.core import Conversation, Person, Workspace

TITLE_MAX = 200
DETAILS_MAX = 4000
WORKFLOW = ("new", "under_review", "accepted", "in_progress", "done")
ROLES = ("referent", "animator")
STATUS_WORDS: dict[str, str] = {
    "new": "new", "nouvelle": "new", "nouveau": "new", "nouvelles": "new",
    "under review": "under_review", "review": "under_review", "reviewing": "under_review", "under_review": "under_review",
    "a l etude": "under_review", "etude": "under_review", "en etude": "under_review", "examen": "under_review",
    "accepted": "accepted", "accept": "accepted", "acceptee": "accepted", "accepte": "accepted", "acceptees": "accepted",
    "in progress": "in_progress", "progress": "in_progress", "in_progress": "in_progress", "en cours": "in_progress",
    "done": "done", "realisee": "done", "realise": "done", "faite": "done", "fait": "done", "terminee": "done",
    "declined": "declined", "decline": "declined", "rejected": "declined", "refusee": "declined", "refuse": "declined",
    "refusees": "declined",
}
LIST_WORDS = {"top": "top", "best": "top", "meilleures": "top", "new": "new", "latest": "new", "nouvelles": "new",
              "recentes": "new", "mine": "mine", "my": "mine", "miennes": "mine", "mes": "mine"}
_TRAILING_TAGS = re.compile(r"(\s+#[^\s#]+)+\s*$")
_QUOTED = re.compile(r"[\"“«]\s*(.+?)\s*[\"”»]")
_UNTIL = re.compile(r"\b(?:until|till|jusqu\s*['’]?\s*(?:au|à|a)(?!\w))\s*", re.IGNORECASE)
_ANY_TAG = re.compile(r"#[^\s#]+")
# "in #sales": a channel typed as text, as a marker, or as the core leaves an adapter's channel
# link in typed text, "(#C123)" (bot.text.sanitize)
_IN_CHANNEL = re.compile(r"\b(?:in|dans)\s+(\u27e6#[^\u27e7]+\u27e7|#[\w\-]+)", re.IGNORECASE)


# Parsing ----------------------------------------------------------------------
def parse_idea_text(text: str) -> tuple[str, str, list[str]]:
    """`Title — details #tag #tag` → (title, details, tags). Tags may sit anywhere; only
    trailing ones are cut from the text, so "Better #onboarding for interns" stays readable."""
    tags = list(extract_hashtags(text))
    for sep in ("—", " -- ", " – "):
        if sep in text:
            title, details = text.split(sep, 1)
            break
    else:
        title, details = text, ""
    title = _TRAILING_TAGS.sub("", title).strip(" -—–")
    details = _TRAILING_TAGS.sub("", details).strip()
    return one_line(title), details, tags


def parse_status(text: str) -> tuple[str | None, str]:
    """A status word or phrase (English or French) at the start of `text`, and the rest."""
    words = text.split()
    for n in (3, 2, 1):
        if len(words) >= n:
            probe = norm_key(" ".join(words[:n]))
            if probe in STATUS_WORDS:
                return STATUS_WORDS[probe], " ".join(words[n:]).strip()
    return None, text


def _tags_from_field(value: str) -> list[str]:
    value = value or ""
    if "#" not in value:
        value = " ".join("#" + w for w in re.split(r"[\s,;]+", value) if w)
    return list(extract_hashtags(value))


# Rendering --------------------------------------------------------------------
def author_label(ctx: Ctx, idea: Idea, locale: str) -> str:
    """Everywhere an idea is shown: "anonymous" for anonymous ideas, whoever looks."""
    if idea.anonymous:
        return ctx.t_in(locale, "idea.anonymous")
    author = ctx.session.get(Person, idea.author_id)
    return ctx.name(author) if author is not None else "?"


def status_label(ctx: Ctx, status: str, locale: str) -> str:
    return ctx.t_in(locale, f"idea.status.{status}")


def idea_line(ctx: Ctx, idea: Idea, locale: str) -> str:
    return ctx.t_in(
        locale, "idea.line", id=idea.number, title=idea.title, votes=idea.vote_count,
        status=status_label(ctx, idea.status, locale), author=author_label(ctx, idea, locale),
    )


def idea_card(ctx: Ctx, idea: Idea, locale: str) -> Card:
    tr = ctx.translator(locale)
    fields: list[tuple[str, str]] = [
        (tr("idea.field.author"), author_label(ctx, idea, locale)),
        (tr("idea.field.votes"), str(idea.vote_count)),
        (tr("idea.field.status"), status_label(ctx, idea.status, locale)),
    ]
    if idea.tags:
        fields.append((tr("idea.field.tags"), " ".join("#" + t for t in store.tag_list(idea.tags))))
    if idea.status == "declined" and idea.decline_reason:
        fields.append((tr("idea.field.reason"), idea.decline_reason))
    if idea.campaign_id is not None:
        campaign = ctx.session.get(IdeaCampaign, idea.campaign_id)
        if campaign is not None:
            fields.append((tr("idea.field.campaign"), campaign.title))
    if idea.source_permalink and not idea.anonymous:  # the source message would name its author
        fields.append((tr("idea.field.source"), idea.source_permalink))
    actions = (
        Action(tr("idea.button.vote"), f"idea vote {idea.number}", "primary"),
        Action(tr("idea.button.unvote"), f"idea unvote {idea.number}"),
        Action(tr("idea.button.follow"), f"idea follow {idea.number}"),
    )
    return Card(title=tr("idea.card_title", id=idea.number, title=idea.title), body=idea.details, fields=tuple(fields),
                actions=actions, footer=tr("idea.card_footer"))


def card_outbound(ctx: Ctx, idea: Idea) -> Outbound:
    """The idea's card where it was posted; the anchor makes every re-send an in-place update."""
    conv = ctx.session.get(Conversation, idea.conversation_id) if idea.conversation_id else ctx.conversation
    assert conv is not None
    locale = ctx.locale_in(conv)
    tr = ctx.translator(locale)
    text = tr("idea.card", id=idea.number, title=idea.title, votes=idea.vote_count, status=status_label(ctx, idea.status, locale))
    reply = Reply(text=text, card=idea_card(ctx, idea, locale), key="idea.card", params={"id": idea.number})
    return Outbound(reply=reply, to=ctx.ref_of(conv), anchor=f"idea:{idea.number}")


def _ack(ctx: Ctx, key: str, **params: object) -> Outbound:
    """A private answer to the command, returned among the card updates it caused."""
    return ctx.answer(ctx.reply(key, private=True, **params))


# Submitting -------------------------------------------------------------------
def ideas_channel(ctx: Ctx, fallback: Conversation | None) -> Conversation | None:
    """The workspace's setting, else a channel named `ideas`, else `fallback`. A configured
    channel that has become private is skipped: the ideas box is for everyone."""
    value = store.get_setting(ctx.session, "ideas_channel")
    if value and value.isdigit():
        conv = ctx.session.get(Conversation, int(value))
        if conv is not None and conv.kind == "public":
            return conv
    conv = people_store.find_conversation(ctx.session, "ideas")
    if conv is not None and conv.kind == "public" and conv.bot_member:
        return conv
    return fallback


def _check_limit(ctx: Ctx) -> None:
    limit = ctx.settings.ideas_daily_limit
    if store.submitted_since(ctx.session, ctx.actor.id, actor_day_start(ctx)) >= limit:
        raise UserError("idea.daily_limit", limit=limit)


def _validate(ctx: Ctx, title: str, details: str) -> None:
    if not title:
        raise UserError("idea.title_required", usage=ctx.t("idea.usage"))
    if len(title) > TITLE_MAX:
        raise UserError("idea.title_too_long", limit=TITLE_MAX, length=len(title))
    if len(details) > DETAILS_MAX:
        raise UserError("idea.details_too_long", limit=DETAILS_MAX, length=len(details))


def submit(ctx: Ctx, *, title: str, details: str, tags: Sequence[str], anonymous: bool,
           source: str = "") -> list[Effect]:
    """Validate, offer look-alikes first (the new idea waits as a draft), else publish."""
    title, details = one_line(sanitize(title)), sanitize(details).strip()
    _validate(ctx, title, details)
    _check_limit(ctx)
    tags = list(dict.fromkeys(t.lstrip("#") for t in tags if t.strip("#")))[:10]
    lookalikes = store.similar(ctx.session, title, tags, reader_id=ctx.actor.id, topics_of=lambda text: topics_in(ctx, text))
    status = "draft" if lookalikes else "new"
    idea = store.create_idea(ctx.session, title=title, details=details, tags=tags, author_id=ctx.actor.id,
                             anonymous=anonymous, status=status, now=ctx.now(), source_permalink=source[:500],
                             conversation_id=ctx.conversation.id if ctx.conversation is not None else None)
    if lookalikes:
        return [_ack_duplicates(ctx, idea, [i for i, _ in lookalikes])]
    return publish(ctx, idea)


def _ack_duplicates(ctx: Ctx, draft: Idea, similar: list[Idea]) -> Outbound:
    lines = [idea_line(ctx, i, ctx.locale) for i in similar]
    actions = [Action(ctx.t("idea.button.vote_instead", id=i.number), f"idea vote {i.number}", "primary") for i in similar]
    actions.append(Action(ctx.t("idea.button.post_anyway"), f"idea post {draft.number}"))
    card = Card(title=ctx.t("idea.duplicates_title"), body="\n".join(lines), actions=tuple(actions),
                footer=ctx.t("idea.duplicates_footer"))
    return _ack(ctx, "idea.duplicates", count=len(similar), title=draft.title, card=card)


def publish(ctx: Ctx, idea: Idea) -> list[Effect]:
    """Post the card: an idea from a private conversation stays in it; any other goes to its
    campaign's channel, else the ideas channel, else where it was typed."""
    source = ctx.session.get(Conversation, idea.conversation_id) if idea.conversation_id else ctx.conversation
    campaign = store.active_campaign_for(ctx.session, store.tag_list(idea.tags), ctx.now(), source=source)
    conv = None
    if campaign is not None and campaign.conversation_id is not None:
        conv = ctx.session.get(Conversation, campaign.conversation_id)
    if not store.is_shared(source):
        conv = source
    conv = conv or ideas_channel(ctx, source)
    idea.status = "new"
    idea.campaign_id = campaign.id if campaign else None
    idea.conversation_id = conv.id if conv is not None else None
    idea.created_at = idea.updated_at = ctx.now()
    ctx.session.flush()
    effects: list[Effect] = [card_outbound(ctx, idea)]
    if ctx.conversation is None or conv is None or conv.id != ctx.conversation.id:
        where = ctx.channel_link(conv) if conv is not None else ""
        effects.append(_ack(ctx, "idea.posted_anon" if idea.anonymous else "idea.posted", id=idea.number, channel=where))
    return effects


def idea_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    if not args.strip():
        return _form(ctx, msg)
    title, details, tags = parse_idea_text(args)
    return submit(ctx, title=title, details=details, tags=tags, anonymous=False, source=msg.source_permalink)


def idea_anon_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    if not args.strip():
        return _form(ctx, msg, anonymous=True)
    title, details, tags = parse_idea_text(args)
    return submit(ctx, title=title, details=details, tags=tags, anonymous=True, source=msg.source_permalink)


def _form(ctx: Ctx, msg: IncomingMessage, *, anonymous: bool = False) -> Reply:
    """The modal / Adaptive Card form; prefilled from the source message of a shortcut."""
    source_text = one_line(msg.source_text) if msg.source_text else ""
    fields = (
        FormField("title", ctx.t("idea.form.title_field"), value=shorten(source_text, TITLE_MAX) if source_text else "",
                  required=True, max_length=TITLE_MAX),
        FormField("details", ctx.t("idea.form.details_field"), kind="multiline", value=msg.source_text.strip()[:DETAILS_MAX],
                  max_length=DETAILS_MAX),
        FormField("tags", ctx.t("idea.form.tags_field"), value=" ".join("#" + t for t in extract_hashtags(msg.source_text))),
        FormField("anonymous", ctx.t("idea.form.anonymous_field"), kind="checkbox", value="yes" if anonymous else ""),
        FormField("source", ctx.t("idea.form.source_field"), value=msg.source_permalink, max_length=500),
    )
    form = Form(title=ctx.t("idea.form.title"), submit_command="idea submit", fields=fields, submit_label=ctx.t("idea.form.submit"))
    return ctx.reply("idea.form", private=True, form=form)


def idea_submit_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply | list[Effect]:
    values = dict(msg.form_values or {})
    if not values:
        return idea_command(ctx, msg, args)
    return submit(ctx, title=str(values.get("title", "")), details=str(values.get("details", "")),
                  tags=_tags_from_field(str(values.get("tags", ""))), anonymous=truthy(values.get("anonymous")),
                  source=str(values.get("source", "") or msg.source_permalink))


def idea_post_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    """"Post mine anyway" after duplicates were offered."""
    idea_id, _ = ctx.numbered(args)
    idea = store.get(ctx.session, idea_id, reader_id=ctx.actor.id, drafts=True) if idea_id else None
    if idea is None or idea.author_id != ctx.actor.id:
        raise UserError("idea.not_found", id=args.strip()[:20])
    if idea.status != "draft":
        raise UserError("idea.already_posted", id=idea.number)
    _check_limit(ctx)
    return publish(ctx, idea)


# Votes and follows ----------------------------------------------------------
def _idea_arg(ctx: Ctx, args: str) -> tuple[Idea, str]:
    idea_id, rest = ctx.numbered(args)
    if idea_id is None:
        raise UserError("idea.id_required", usage=ctx.t("idea.vote_usage"))
    idea = store.get(ctx.session, idea_id, reader_id=ctx.actor.id)
    if idea is None:
        raise UserError("idea.not_found", id=idea_id)
    return idea, rest


def vote_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    idea, _ = _idea_arg(ctx, args)
    if idea.author_id == ctx.actor.id:
        raise UserError("idea.own_vote", id=idea.number)
    if not store.add_vote(ctx.session, ctx.tenant, idea, ctx.actor.id, ctx.now()):
        return [_ack(ctx, "idea.already_voted", id=idea.number, votes=idea.vote_count)]
    idea.updated_at = ctx.now()
    effects: list[Effect] = [card_outbound(ctx, idea), _ack(ctx, "idea.voted", id=idea.number, votes=idea.vote_count)]
    author = ctx.session.get(Person, idea.author_id)
    if author is not None:
        effects += notify(ctx, author, "idea.notify.voted", params={"id": idea.number, "title": idea.title},
                          thread_key=f"idea:{idea.number}:votes")
    return effects


def unvote_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    idea, _ = _idea_arg(ctx, args)
    if not store.remove_vote(ctx.session, idea, ctx.actor.id):
        return [_ack(ctx, "idea.not_voted", id=idea.number)]
    idea.updated_at = ctx.now()
    return [card_outbound(ctx, idea), _ack(ctx, "idea.unvoted", id=idea.number, votes=idea.vote_count)]


def follow_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    idea, _ = _idea_arg(ctx, args)
    new = store.follow(ctx.session, ctx.tenant, idea, ctx.actor.id, ctx.now())
    return ctx.reply("idea.followed" if new else "idea.already_following", private=True, id=idea.number, title=idea.title)


def unfollow_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    idea, _ = _idea_arg(ctx, args)
    if not store.unfollow(ctx.session, idea, ctx.actor.id):
        raise UserError("idea.not_following", id=idea.number)
    return ctx.reply("idea.unfollowed", private=True, id=idea.number, title=idea.title)


def show_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    idea, _ = _idea_arg(ctx, args)
    return ctx.reply("idea.shown", private=True, card=idea_card(ctx, idea, ctx.locale), id=idea.number, title=idea.title)


# Workflow ---------------------------------------------------------------------
def _check_transition(ctx: Ctx, idea: Idea, target: str) -> None:
    if idea.status == target:
        raise UserError("idea.status_same", id=idea.number, status=status_label(ctx, target, ctx.locale))
    if idea.status in ("done", "declined"):
        raise UserError("idea.status_final", id=idea.number, status=status_label(ctx, idea.status, ctx.locale))
    if target == "declined":
        return
    if target not in WORKFLOW or WORKFLOW.index(target) < WORKFLOW.index(idea.status):
        allowed = [s for s in WORKFLOW if WORKFLOW.index(s) > WORKFLOW.index(idea.status)] + ["declined"]
        raise UserError("idea.status_backwards", id=idea.number, status=status_label(ctx, idea.status, ctx.locale),
                        allowed=", ".join(status_label(ctx, s, ctx.locale) for s in allowed))


def status_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    idea, rest = _idea_arg(ctx, args)
    target, reason = parse_status(rest)
    if target is None:
        raise UserError("idea.status_unknown", given=rest[:40] or "…",
                        choices=", ".join(status_label(ctx, s, ctx.locale) for s in (*WORKFLOW, "declined")))
    conv = ctx.session.get(Conversation, idea.conversation_id) if idea.conversation_id else None
    ctx.require_role(ROLES, conv, "idea.action.status")
    _check_transition(ctx, idea, target)
    reason = one_line(reason)
    if target == "declined" and not reason:
        raise UserError("idea.reason_required", id=idea.number)
    idea.status = target
    idea.decline_reason = reason if target == "declined" else ""
    idea.updated_at = ctx.now()
    ctx.audit("idea.status", f"idea {idea.id} #{idea.number} -> {target}")
    effects: list[Effect] = [card_outbound(ctx, idea),
                             _ack(ctx, "idea.status_changed", id=idea.number, status=status_label(ctx, target, ctx.locale))]
    audience = store.audience(ctx.session, idea)
    people = people_store.people_by_ids(ctx.session, audience)
    for person_id in audience:
        person = people.get(person_id)
        if person is None or person.id == ctx.actor.id:
            continue
        key = "idea.notify.declined" if target == "declined" else "idea.notify.status"
        params = {"id": idea.number, "title": idea.title, "status": ctx.t_for(person, f"idea.status.{target}"), "reason": reason}
        effects += notify(ctx, person, key, params=params, thread_key=f"idea:{idea.number}:status:{target}",
                          actions=(Action("idea.button.show", f"idea show {idea.number}"),))
    return effects


# Lists --------------------------------------------------------------------------
def list_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    word = norm_key(args.split()[0]) if args.split() else "top"
    tags = extract_hashtags(args)
    status, _ = parse_status(args)
    if tags:
        mode, title = "tag", ctx.t("idea.list.tag", tag=tags[0])
        found = store.listing(ctx.session, "tag", reader_id=ctx.actor.id, tag=tags[0])
    elif word in LIST_WORDS:
        mode = LIST_WORDS[word]
        title = ctx.t(f"idea.list.{mode}")
        found = store.listing(ctx.session, mode, reader_id=ctx.actor.id)
    elif status is not None:
        mode, title = "status", ctx.t("idea.list.status", status=status_label(ctx, status, ctx.locale))
        found = store.listing(ctx.session, "status", reader_id=ctx.actor.id, status=status)
    else:
        raise UserError("idea.list_unknown", given=args[:40], usage=ctx.t("idea.list_usage"))
    if not found:
        return ctx.reply("idea.list_empty", private=True, what=title)
    lines = [idea_line(ctx, i, ctx.locale) for i in found]
    if mode == "mine":  # only the author sees this list, so it may say which ones were anonymous
        lines = [line + (ctx.t("idea.list.anon_marker") if i.anonymous else "") for line, i in zip(lines, found)]
    card = Card(title=title, body="\n".join(lines), footer=ctx.t("idea.list_footer"))
    return ctx.reply("idea.list", private=True, card=card, count=len(found), what=title)


# Settings and admin -------------------------------------------------------------
def channel_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    conv = ctx.find_channel(args)
    if conv is None or conv.kind == "dm":
        raise UserError("error.unknown_channel", channel=args.strip()[:60] or "#…")
    if conv.kind != "public":  # ideas from everywhere would land where only its members read them
        raise UserError("idea.channel_not_public", channel=ctx.channel_link(conv))
    store.set_setting(ctx.session, "ideas_channel", str(conv.id), ctx.actor.id, ctx.now())
    ctx.audit("idea.channel", f"{conv.id}")
    return ctx.reply("idea.channel_set", private=True, channel=ctx.channel_link(conv))


def author_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """Admins only, for abuse handling; every look-up is written to the audit log. An admin
    is no exception to privacy: an idea they may not read is not found."""
    idea_id, _ = ctx.numbered(args)
    idea = store.get(ctx.session, idea_id, reader_id=ctx.actor.id) if idea_id else None
    if idea is None:
        raise UserError("idea.not_found", id=args.strip()[:20])
    author = ctx.session.get(Person, idea.author_id)
    ctx.audit("idea.author_revealed", f"idea {idea.id} #{idea.number} anonymous={idea.anonymous}")
    return ctx.reply("idea.author_is", private=True, id=idea.number, name=ctx.name(author) if author else "?",
                     anonymous=ctx.t("idea.yes") if idea.anonymous else ctx.t("idea.no"))


# Campaigns ----------------------------------------------------------------------
def campaign_command(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    text = args
    where = _IN_CHANNEL.search(text)
    channel = ctx.conversation
    if where:
        channel = people_store.find_conversation(ctx.session, where.group(1).strip("\u27e6\u27e7").lstrip("#"))
        if channel is None:
            raise UserError("error.unknown_channel", channel=where.group(1)[:60])
        text = text[: where.start()] + text[where.end():]
    ctx.require_role(("animator",), channel, "idea.action.campaign")
    until = _UNTIL.search(_QUOTED.sub(lambda quoted: " " * len(quoted.group(0)), text))  # not in a quoted title
    zone_of_channel = conversation_zone(channel, ctx.actor.tz)
    day = _campaign_end(ctx, text[until.end():], zone_of_channel) if until else None
    if day is None:
        raise UserError("idea.campaign_date", usage=ctx.t("idea.campaign_usage"))
    ends_at = end_of_day(day, zone_of_channel)
    if ends_at <= ctx.now():
        raise UserError("idea.campaign_past", date=day)
    quoted = _QUOTED.search(text)
    title = quoted.group(1) if quoted else text[: until.start()] if until else ""
    title = one_line(_TRAILING_TAGS.sub("", title.replace("#", " #")).strip(" \"“”«»"))
    tags = [t for t in extract_hashtags(text)]
    if not title or not tags:
        raise UserError("idea.campaign_incomplete", usage=ctx.t("idea.campaign_usage"))
    if len(title) > TITLE_MAX:
        raise UserError("idea.title_too_long", limit=TITLE_MAX, length=len(title))
    campaign = store.create_campaign(ctx.session, title=title, tags=tags, conversation_id=channel.id if channel else None,
                                     created_by=ctx.actor.id, ends_at=ends_at, now=ctx.now())
    tr = ctx.translator(ctx.locale_in(channel))
    tag_text = " ".join("#" + t for t in tags)
    card = Card(title=tr("idea.campaign_title", title=title), body=tr("idea.campaign_body", tags=tag_text, date=day),
                actions=(Action(tr("idea.button.submit"), "idea"),), footer=tr("idea.campaign_footer", tags=tag_text))
    effects: list[Effect] = []
    if channel is not None:
        reply = Reply(text=tr("idea.campaign_card", title=title, date=day), card=card, key="idea.campaign_card",
                      params={"id": campaign.id})
        effects.append(Outbound(reply=reply, to=ctx.ref_of(channel), anchor=f"idea-campaign:{campaign.id}"))
    effects.append(_ack(ctx, "idea.campaign_started", id=campaign.id, title=title, date=day))
    return effects


def _campaign_end(ctx: Ctx, after_until: str, tz: ZoneInfo) -> date | None:
    """The day the words after "until" name (`2026-12-15`, `December 15`, `15 décembre`,
    `friday`); the quoted title and #tags may follow them and are no part of the date."""
    words = one_line(_ANY_TAG.sub(" ", _QUOTED.sub(" ", after_until)))
    when = parse_when(words, ctx.now(), tz, vocabulary(ctx.services.prompts)) if words else None
    return when.date() if when is not None else None


def campaign_summaries(jctx: JobCtx) -> list[Effect]:
    """Post each ended campaign's summary once (claimed by a conditional update)."""
    effects: list[Effect] = []
    due = [(c.tenant, c.id) for c in store.due_campaigns(jctx.session, jctx.now)]
    for tenant, campaign_id in due:
        with jctx.services.db.session(tenant) as session:
            if not store.claim_summary(session, campaign_id, jctx.now):
                continue
            campaign = session.get(IdeaCampaign, campaign_id)
            workspace = session.get(Workspace, tenant)
            creator = session.get(Person, campaign.created_by) if campaign and campaign.created_by else None
            if campaign is None or workspace is None or creator is None:
                continue
            conv = session.get(Conversation, campaign.conversation_id) if campaign.conversation_id else None
            ctx = jctx.acting_as(session, workspace, creator, conv)
            conv = conv or ideas_channel(ctx, None)
            if conv is None:
                continue
            effects.append(_summary(ctx, campaign, conv))
    return effects


def _summary(ctx: Ctx, campaign: IdeaCampaign, conv: Conversation) -> Outbound:
    """Posted in `conv`: only the ideas everyone reading it may read, and their count."""
    locale = ctx.locale_in(conv)
    tr = ctx.translator(locale)
    top = store.campaign_ideas(ctx.session, campaign.id, shown_in=conv)
    total = store.campaign_count(ctx.session, campaign.id, shown_in=conv)
    body = "\n".join(idea_line(ctx, i, locale) for i in top) or tr("idea.campaign_no_ideas")
    card = Card(title=tr("idea.campaign_summary_title", title=campaign.title), body=body,
                footer=tr("idea.campaign_summary_footer", count=total))
    reply = Reply(text=tr("idea.campaign_summary", title=campaign.title, count=total), card=card,
                  key="idea.campaign_summary", params={"id": campaign.id, "count": total})
    return Outbound(reply=reply, to=ctx.ref_of(conv))


def register(r: Registry) -> None:
    g = "ideas"
    r.command(CommandSpec("idea", "idée", idea_command, "idea.help", "idea.usage", aliases=("idee",), group=g))
    r.command(CommandSpec("idea anon", "idée anonyme", idea_anon_command, "idea.anon_help", "idea.anon_usage",
                          aliases=("idea anonymous", "idée anonyme"), group=g))
    r.command(CommandSpec("idea submit", "idée envoyer", idea_submit_command, "idea.submit_help", group=g, hidden=True))
    r.command(CommandSpec("idea post", "idée publier", idea_post_command, "idea.post_help", group=g, hidden=True, needs_args=True))
    r.command(CommandSpec("idea vote", "idée voter", vote_command, "idea.vote_help", "idea.vote_usage", group=g, needs_args=True))
    r.command(CommandSpec("idea unvote", "idée dévoter", unvote_command, "idea.unvote_help", "idea.vote_usage",
                          aliases=("idée retirer vote",), group=g, needs_args=True))
    r.command(CommandSpec("idea follow", "idée suivre", follow_command, "idea.follow_help", "idea.vote_usage", group=g, needs_args=True))
    r.command(CommandSpec("idea unfollow", "idée ne plus suivre", unfollow_command, "idea.unfollow_help", "idea.vote_usage",
                          group=g, needs_args=True, hidden=True))
    r.command(CommandSpec("idea show", "idée voir", show_command, "idea.show_help", "idea.vote_usage", group=g, needs_args=True))
    r.command(CommandSpec("idea status", "idée statut", status_command, "idea.status_help", "idea.status_usage", group=g,
                          needs_args=True))
    r.command(CommandSpec("idea campaign", "idée campagne", campaign_command, "idea.campaign_help", "idea.campaign_usage",
                          group=g, needs_args=True))
    r.command(CommandSpec("idea author", "idée auteur", author_command, "idea.author_help", "idea.vote_usage",
                          permission="admin", group="admin", needs_args=True, action_key="idea.action_author"))
    r.command(CommandSpec("ideas", "idées", list_command, "idea.list_help", "idea.list_usage", aliases=("idees",), group=g))
    r.command(CommandSpec("ideas channel", "idées canal", channel_command, "idea.channel_help", "idea.channel_usage",
                          permission="admin", group="admin", needs_args=True, action_key="idea.action_channel"))
    r.job(Job("ideas.campaign_summaries", timedelta(minutes=5), campaign_summaries))
