"""The one locale rule: which language a message is written in, decided from stored values.

- A private reply or a DM is in the recipient's language: the person's locale, else the
  workspace default, else the configured default.
- A post in a channel is in the channel's language (`Conversation.language`, set by its
  animator), else the workspace default, else the configured default. Who asked does not
  matter: everyone in the channel reads the same post.

Pure: callers pass the values or rows they already hold; the store lookups live in
`adapters/shell.py` (adapters) and in the rows a handler or a job has loaded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bot.i18n import LANGUAGES

if TYPE_CHECKING:
    from store.models.core import Conversation, Person, Workspace


def choose(default: str, workspace: str | None, *, private: bool, person: str | None = None,
           channel: str | None = None) -> str:
    """The rule on bare values: `person` counts only for private messages, `channel` only for
    channel posts; then the workspace default, then `default`."""
    own = person if private else channel
    return own or workspace or default


def for_person(default: str, workspace: "Workspace | None", person: "Person | None") -> str:
    """The language of a DM or private reply to `person`."""
    return choose(default, workspace.default_locale if workspace is not None else None, private=True,
                  person=person.locale if person is not None else None)


def for_actor(default: str, workspace: "Workspace | None", person: "Person | None",
              messenger_locale: str | None = None) -> str:
    """The language of a command's own context (`Ctx.locale`): the person's setting, else the
    language their messenger says they use (Teams sends one) when the bot speaks it, then as
    `for_person`."""
    said = messenger_locale if messenger_locale in LANGUAGES else None
    return choose(default, workspace.default_locale if workspace is not None else None, private=True,
                  person=(person.locale if person is not None else None) or said)


def for_channel(default: str, workspace: "Workspace | None", conversation: "Conversation | None") -> str:
    """The language of a post everyone in `conversation` reads."""
    return choose(default, workspace.default_locale if workspace is not None else None, private=False,
                  channel=conversation.language if conversation is not None else None)
