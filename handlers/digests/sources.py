"""Where ideas, help requests, kudos and follows come from.

Those tables belong to other features (ideas / help / kudos in `store.models.contribution`,
follows in `store.models.social`). Digests read them through this small interface, so a
digest works — with those sections empty — before they exist, and needs no change in the
core when they land: `contribution_source()` picks the store-backed reader when the models
are importable.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Entry:
    """One line of a section: what to show, who it is by, a free detail (channel, skills),
    counts shown when set, and the permalink of the original message."""

    text: str
    author: str = ""
    detail: str = ""
    link: str = ""
    replies: int | None = None
    reactions: int | None = None
    votes: int | None = None


class ContributionSource(Protocol):
    """Reads for the ideas, help and kudos sections. `conversation_ids` are public channels
    already checked by the caller; implementations must not read outside them."""

    def ideas(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]: ...

    def open_help(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]: ...

    def kudos(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]: ...


class NoContributions:
    """Used while ideas, help requests and kudos are not in the store: those sections stay empty."""

    def ideas(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        return []

    def open_help(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        return []

    def kudos(self, session: Session, conversation_ids: Sequence[int], start: datetime, end: datetime, limit: int) -> list[Entry]:
        return []


def contribution_source() -> ContributionSource:
    """The store-backed source when `store.models.contribution` exists, else the empty one."""
    try:
        importlib.import_module("store.models.contribution")
        module = importlib.import_module("handlers.digests.contribution_source")
    except ImportError:
        return NoContributions()
    return module.StoreContributions()  # type: ignore[no-any-return]


class FollowSource(Protocol):
    def followed(self, session: Session, person_id: int) -> tuple[list[int], list[int]]:
        """(followed people ids, followed topic ids)."""
        ...


class NoFollows:
    def followed(self, session: Session, person_id: int) -> tuple[list[int], list[int]]:
        return [], []


def follow_source() -> FollowSource:
    """Follows from `store.models.social` when that feature has added them, else none
    (personal digests then carry mentions of the person only)."""
    try:
        module = importlib.import_module("handlers.digests.follow_source")
        return module.StoreFollows()  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return NoFollows()
