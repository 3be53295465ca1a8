"""The App Home tab and the profile edit modal, both built from the core's neutral replies.

The Home tab runs the core's `glance` (an animator's channels at a glance, shown only when
the person has some), `profile` and `feed` commands for the person (a command that is not
registered is skipped) and adds quick actions; the profile modal is a
neutral `Form` whose submission becomes `profile set <field> <value>` commands.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adapters.shell import DeliveryShell
from adapters.slack.inbound import PLATFORM
from adapters.slack.render import ACTION_PREFIX, Block, Translate, mrkdwn, plain, reply_blocks
from bot.core import Bot
from bot.text import reply_texts
from bot.types import ConversationRef, Form, FormField, IncomingMessage, Outbound, Reply, UserRef
from store.models.core import Person

PROFILE_CALLBACK = "causette_profile"
PROFILE_EDIT_ACTION = "causette_profile_edit"
PROFILE_FIELDS = ("title", "department", "site", "tz", "languages")
HOME_COMMANDS = ("glance", "profile", "feed")
CARD_ONLY = ("glance",)  # shown only when the core answers with a card (an animator's channels), never its "nothing here" line
QUICK_COMMANDS = ("skills", "feed", "help")


def has_command(bot: Bot, name: str) -> bool:
    try:
        bot.registry.get(name)
        return True
    except KeyError:
        return False


def core_replies(bot: Bot, tenant: str, user: str, channel: str, command: str) -> list[Reply]:
    """What the core answers to `command` typed by `user` in their DM with the bot."""
    conv = ConversationRef(PLATFORM, tenant, channel or user, "dm")
    msg = IncomingMessage(id=f"home-{command}-{user}", text=command, sender=UserRef(PLATFORM, tenant, user),
                          conversation=conv, addressed=True, via="command")
    return [e.reply for e in bot.handle(msg) if isinstance(e, Outbound)]


def home_blocks(bot: Bot, tenant: str, user: str, channel: str, t: Translate) -> list[Block]:
    shell = DeliveryShell(bot.services)
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": plain(t("slack.home_title"))[:150], "emoji": True}}]
    for command in HOME_COMMANDS:
        if not has_command(bot, command):
            continue
        replies = [r for r in core_replies(bot, tenant, user, channel, command) if r.card is not None or command not in CARD_ONLY]
        if replies:
            blocks.append({"type": "divider"})
        for reply in replies:
            blocks += reply_blocks(reply, names=shell.names(tenant, reply_texts(reply)))
    buttons: list[dict[str, Any]] = [{
        "type": "button", "action_id": PROFILE_EDIT_ACTION, "style": "primary", "value": "profile",
        "text": {"type": "plain_text", "text": plain(t("slack.home_edit_profile"))[:75], "emoji": True},
    }]
    for i, command in enumerate(c for c in QUICK_COMMANDS if has_command(bot, c)):
        buttons.append({"type": "button", "action_id": f"{ACTION_PREFIX}:home{i}", "value": command,
                        "text": {"type": "plain_text", "text": plain(t(f"slack.home_action_{command}"))[:75], "emoji": True}})
    blocks += [{"type": "divider"},
               {"type": "section", "text": {"type": "mrkdwn", "text": f"*{mrkdwn(t('slack.home_quick_actions'))}*"}},
               {"type": "actions", "elements": buttons},
               {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(t("slack.home_footer", command=bot.services.settings.command_name))}]}]
    return blocks


def profile_form(bot: Bot, tenant: str, user: str, t: Translate) -> Form:
    current = current_profile(bot, tenant, user)
    fields = tuple(FormField(name, t(f"slack.profile_field_{name}"), value=current.get(name, ""), max_length=200)
                   for name in PROFILE_FIELDS)
    return Form(title=t("slack.profile_form_title"), submit_command="profile set", fields=fields, submit_label=t("slack.form_submit"))


def profile_commands(values: dict[str, str], current: dict[str, str]) -> list[str]:
    """One `profile set` command per field the person changed (empty fields are left alone)."""
    out = []
    for name in PROFILE_FIELDS:
        value = " ".join((values.get(name) or "").split())
        if value and value != (current.get(name) or ""):
            out.append(f"profile set {name} {value}")
    return out


def current_profile(bot: Bot, tenant: str, user: str) -> dict[str, str]:
    with bot.services.db.session(tenant, readonly=True) as s:
        person = s.scalar(select(Person).where(Person.external_id == user))
        return {name: str(getattr(person, name, "") or "") for name in PROFILE_FIELDS} if person else {}

