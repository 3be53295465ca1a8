""""3 months ago" in the reader's language, for profile cards and expertise reasons."""
from __future__ import annotations

from datetime import datetime

from bot.context import Ctx


def ago(ctx: Ctx, when: datetime, now: datetime) -> str:
    days = max(0, (now - when).days)
    if days == 0:
        return ctx.t("people.ago.today")
    if days == 1:
        return ctx.t("people.ago.yesterday")
    if days < 14:
        return ctx.t("people.ago.days", n=days)
    if days < 60:
        return ctx.t("people.ago.weeks", n=days // 7)
    if days < 730:
        return ctx.t("people.ago.months", n=days // 30)
    return ctx.t("people.ago.years", n=days // 365)
