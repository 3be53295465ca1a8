"""Matrix: what the bot's sync loop must remember across restarts, in the database.

Not tenant-scoped (one bot account serves one homeserver's people, and the sync loop writes
before any event is parsed). One row per (account, name), `name` saying what it is:
- `sync_token`: the `next_batch` after which every event is in the durable inbox;
- `lease`: which process runs the account's one sync loop, and until when;
- `form:<user id>`: a person's guided form in progress (adapters/matrix/forms.py);
- `reaction:<event id>`: a reaction the bot saw (target, key, sender), so its redaction removes it;
- `card:<event id>`: the commands of a card the bot posted, answered by number or keycap reaction;
- `dm:<user id>`: the direct chat the bot uses with that person.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, UTCDateTime, utcnow


class MatrixState(Base):
    __tablename__ = "matrix_state"
    account: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
