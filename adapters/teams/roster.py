"""Member sync on `conversationUpdate`: profiles (name, e-mail, tenant) of a team's or chat's
members, read page by page with `TeamsInfo.get_paged_members`, become neutral events."""
from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo

from adapters.teams.inbound import PLATFORM, Parsed
from bot.types import ConversationRef, Event, MembersChanged, ProfileUpdate, UserRef

log = logging.getLogger(__name__)
MAX_PAGES = 1000
MAX_SINGLE_LOOKUPS = 50


def profile_event(member: Any, tenant: str) -> ProfileUpdate | None:
    """A TeamsChannelAccount → ProfileUpdate (None for bots and accounts without id)."""
    uid = getattr(member, "id", None) or getattr(member, "aad_object_id", None)
    if not uid or str(uid).startswith("28:"):
        return None
    name = getattr(member, "name", None) or " ".join(
        p for p in (getattr(member, "given_name", None), getattr(member, "surname", None)) if p) or None
    email = getattr(member, "email", None) or getattr(member, "user_principal_name", None)
    member_tenant = getattr(member, "tenant_id", None) or tenant
    if member_tenant != tenant:
        log.info("teams: member %s belongs to tenant %s (guest in %s)", uid, member_tenant, tenant)
    return ProfileUpdate(user=UserRef(PLATFORM, tenant, str(uid), name or ""), real_name=name, email=email)


async def sync_roster(turn: TurnContext, conv: ConversationRef, parsed: Parsed, page_size: int = 200) -> list[Event]:
    """Profiles and membership: every page of members when the bot joined, else the added members."""
    profiles: list[ProfileUpdate] = []
    try:
        if parsed.bot_joined:
            token: str | None = None
            for _ in range(MAX_PAGES):
                page = await TeamsInfo.get_paged_members(turn, token, page_size)
                profiles += [p for p in (profile_event(m, conv.tenant) for m in page.members or []) if p]
                token = page.continuation_token
                if not token:
                    break
        else:
            for user in parsed.members_added[:MAX_SINGLE_LOOKUPS]:
                member = await TeamsInfo.get_member(turn, user.id)
                event = profile_event(member, conv.tenant)
                if event:
                    profiles.append(event)
    except Exception:  # noqa: BLE001 - a roster we cannot read must not lose the install
        log.exception("teams: member sync of %s failed (the bot still works; profiles sync on the next update)", conv.id)
    events: list[Event] = list(profiles)
    if parsed.bot_joined and profiles:
        events.append(MembersChanged(conv, joined=tuple(p.user for p in profiles)))
    return events
