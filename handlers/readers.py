"""Readers: read receipts (`MessageRead`, from messengers that tell a bot who read what: Matrix)
are stored per message and person (store/readers.py), for adoption analytics to count real
readers. Only conversations the bot is in and people the workspace knows (created on first
sight, like any sender) are recorded; the bot's own receipts never reach here (adapters skip them)."""
from __future__ import annotations

from bot.context import Ctx
from bot.registry import Registry
from bot.types import Effect, MessageRead
from store import readers


def on_read(ctx: Ctx, event: MessageRead) -> list[Effect]:
    if ctx.conversation is None or ctx.actor.is_bot:
        return []
    readers.record(ctx.session, ctx.tenant, ctx.conversation.id, event.message_id, ctx.actor.id, event.read_at or ctx.now())
    return []


def register(r: Registry) -> None:
    r.on(MessageRead, on_read)
