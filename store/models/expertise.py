"""Topic vectors of the expertise meaning tier (handlers/expertise/meaning.py).

One row per workspace, embedding model and topic key: the vector of the topic's label (a
declared skill, a hashtag, an alias term), computed once by whichever process first needed it
and read by every other process when it builds its index, never per query. A new model (its
name carries the package version) has no rows yet, so its vectors are recomputed. A vector is
derived from a label anyone reading the topic sees; it holds no people and no evidence.
"""
from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped


class TopicVector(TenantScoped, Base):
    __tablename__ = "topic_vectors"
    __table_args__ = (UniqueConstraint("tenant", "model", "topic_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(80))
    topic_key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(String(200))          # what was embedded
    vector: Mapped[bytes] = mapped_column(LargeBinary)     # float16, little-endian
