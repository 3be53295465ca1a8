"""Taxonomy labels an admin imported (`taxonomy import`): each row is one label of one concept.

Labels of one concept are synonyms of each other; two concepts sharing a label are never
joined through it (the expertise index keeps concepts apart, see handlers/expertise/taxonomy.py).
A taxonomy holds words only: never people nor evidence.
"""
from __future__ import annotations

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped


class TaxonomyLabel(TenantScoped, Base):
    __tablename__ = "taxonomy_labels"
    __table_args__ = (
        UniqueConstraint("tenant", "concept", "key"),
        Index("ix_taxonomy_labels_key", "tenant", "key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    concept: Mapped[str] = mapped_column(String(300))
    lang: Mapped[str] = mapped_column(String(10), default="")
    label: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))          # bot.text.topic_key(label)
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)
