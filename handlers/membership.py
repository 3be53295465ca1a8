"""Ambient hooks that keep people and channel membership in step with the platform.

`ProfileUpdate` refreshes a person (name, title, e-mail, time zone, avatar, language,
deactivation); `MembersChanged` maintains ConversationMember rows, which the privacy
contract reads, and whether the bot is in the conversation.
"""
from __future__ import annotations

from sqlalchemy import delete, select

from bot.context import Ctx, zone
from handlers.expertise.lookup import track_changes
from bot.registry import Registry
from bot.types import MembersChanged, ProfileUpdate
from store import expertise as xstore
from store import people as people_store
from store.models.core import ConversationMember, Person

LIMITS = {"display_name": 200, "title": 200, "email": 320, "avatar_url": 500}


def on_profile_update(ctx: Ctx, event: ProfileUpdate) -> None:
    person = ctx.actor
    now = ctx.now()
    values = {"display_name": event.real_name, "title": event.title, "email": event.email, "avatar_url": event.avatar_url}
    for attr, value in values.items():
        if value is not None:
            setattr(person, attr, value.strip()[: LIMITS[attr]])
    if event.tz is not None and zone(event.tz).key == event.tz:
        person.tz = event.tz
    if event.locale is not None:
        lang = event.locale.split("-")[0].split("_")[0].lower()
        if lang in ("en", "fr") and person.locale is None:
            person.locale = lang
    if event.user.is_bot and not person.is_bot:
        person.is_bot = True
    person.profile_synced_at = now
    person.updated_at = now
    if event.deactivated is not None:
        active = not event.deactivated
        if person.active != active:
            xstore.set_active(ctx.session, ctx.tenant, person, active)
            track_changes(ctx)


def on_members_changed(ctx: Ctx, event: MembersChanged) -> None:
    conversation = ctx.conversation
    if conversation is None:
        return
    now = ctx.now()
    if event.bot_joined:
        conversation.bot_member = True
    if event.bot_left:
        conversation.bot_member = False
    # In platform-id order: two events adding the same new people in opposite orders would
    # otherwise each wait on PostgreSQL for the rows the other wrote first (a deadlock).
    for user in sorted(event.joined, key=lambda u: u.id):
        person = people_store.upsert_person(ctx.session, user, now)
        people_store.ensure_member(ctx.session, conversation, person, now)
    left_ids = [user.id for user in event.left]
    if left_ids:
        ids = list(ctx.session.scalars(select(Person.id).where(Person.external_id.in_(left_ids))))
        if ids:
            ctx.session.execute(delete(ConversationMember).where(
                ConversationMember.conversation_id == conversation.id, ConversationMember.person_id.in_(ids)))
    system = ctx.actor
    if system.external_id == "causette-system" and system.is_bot:
        ctx.session.execute(delete(ConversationMember).where(
            ConversationMember.conversation_id == conversation.id, ConversationMember.person_id == system.id))
    conversation.member_count = len(list(ctx.session.scalars(
        select(ConversationMember.id).where(ConversationMember.conversation_id == conversation.id))))


def register(r: Registry) -> None:
    r.on(ProfileUpdate, on_profile_update)
    r.on(MembersChanged, on_members_changed)
