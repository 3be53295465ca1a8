"""Core tables: workspaces, people, conversations, skills, evidence, roles, idempotency."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime, utcnow


class Workspace(Base):
    """One Slack team, Teams tenant or console demo. Its id is the `tenant` of every row it owns."""

    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
    default_locale: Mapped[str] = mapped_column(String(8), default="en")
    expertise_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Person(TenantScoped, Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("tenant", "external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(200), default="", index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    site: Mapped[str] = mapped_column(String(200), default="")
    tz: Mapped[str] = mapped_column(String(64), default="")
    languages: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    avatar_url: Mapped[str] = mapped_column(String(500), default="")
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_mentions: Mapped[bool] = mapped_column(Boolean, default=True)
    profile_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(TenantScoped, Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("tenant", "external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(10), default="public")  # dm | public | private | group
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    tz: Mapped[str] = mapped_column(String(64), default="")
    bot_member: Mapped[bool] = mapped_column(Boolean, default=True)
    indexing: Mapped[bool] = mapped_column(Boolean, default=True)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationMember(TenantScoped, Base):
    """Who belongs to a conversation: the privacy contract reads this for private ones."""

    __tablename__ = "conversation_members"
    __table_args__ = (UniqueConstraint("conversation_id", "person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Skill(TenantScoped, Base):
    __tablename__ = "skills"
    __table_args__ = (UniqueConstraint("tenant", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))


class PersonSkill(TenantScoped, Base):
    """A declared skill, with when it was last confirmed (fresh-skills reminders use it)."""

    __tablename__ = "person_skills"
    __table_args__ = (UniqueConstraint("person_id", "skill_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(20), default="declared")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SkillAlias(TenantScoped, Base):
    """Aliases an admin added with `alias add` (the file in handlers/expertise holds the defaults)."""

    __tablename__ = "skill_aliases"
    __table_args__ = (UniqueConstraint("tenant", "alias_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alias_key: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(200))


class Evidence(TenantScoped, Base):
    """One piece of evidence that a person knows a topic (hashtag used, help given, kudos...).

    `source_ref` makes each piece idempotent; `conversation_id` lets read paths
    apply the privacy contract to "why" snippets.
    """

    __tablename__ = "evidence"
    __table_args__ = (
        UniqueConstraint("tenant", "kind", "source_ref", "person_id", "topic_key"),
        Index("ix_evidence_topic", "tenant", "topic_key"),
        Index("ix_evidence_person", "tenant", "person_id"),
        Index("ix_evidence_batch", "batch"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    topic_key: Mapped[str] = mapped_column(String(200))
    topic_label: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))  # hashtag | mentioned | thanked | help | kudos
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source_ref: Mapped[str] = mapped_column(String(300), default="")
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True)
    snippet: Mapped[str] = mapped_column(Text, default="")
    # The writing transaction's token (store/evidence_log.py): its `EvidenceBatch` row says in
    # which order it committed. NULL for rows loaded in bulk outside the log.
    batch: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class EvidenceSequence(Base):
    """Per workspace, the last number given to a transaction that wrote or removed evidence
    (store/evidence_log.py). A row of its own: taken at the very end of a transaction, its
    lock can never be part of a deadlock, which the workspace row (locked mid-transaction
    by `bump_version`) could."""

    __tablename__ = "evidence_sequences"
    tenant: Mapped[str] = mapped_column(String(120), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class EvidenceBatch(Base):
    """One committed transaction that wrote or removed evidence: its token (stamped on its rows
    when they were written) and the number it took just before committing (store/evidence_log.py).
    Kept a few days: rows whose batch is gone are older than any index that could miss them."""

    __tablename__ = "evidence_batches"
    __table_args__ = (Index("ix_evidence_batches_seq", "tenant", "seq"),)
    token: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tenant: Mapped[str] = mapped_column(String(120), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvidenceRemoval(TenantScoped, Base):
    """A removed piece of evidence, kept a few days so other processes can drop it from their
    in-memory expertise index (store/evidence_log.py). Holds ids and a topic key, no content."""

    __tablename__ = "evidence_removals"
    __table_args__ = (Index("ix_evidence_removals_batch", "batch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(Integer)
    topic_key: Mapped[str] = mapped_column(String(200))
    batch: Mapped[int] = mapped_column(BigInteger)
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Role(TenantScoped, Base):
    """animator / referent of a channel (conversation_id), of a part of the organisation
    (`scope_kind` department | site | language and `scope_value`, e.g. "Sales", with no
    conversation), or of the whole workspace (neither)."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("person_id", "role", "conversation_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True)
    scope_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    scope_value: Mapped[str] = mapped_column(String(200), default="")
    granted_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessedEvent(TenantScoped, Base):
    """Idempotency keys (Slack event ids, Teams activity ids...): one row per event handled."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("tenant", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PostedMessage(TenantScoped, Base):
    """Where an anchored message (e.g. "idea:42") was posted, so updates edit it in place."""

    __tablename__ = "posted_messages"
    __table_args__ = (UniqueConstraint("tenant", "anchor", "conversation_external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anchor: Mapped[str] = mapped_column(String(200))
    conversation_external_id: Mapped[str] = mapped_column(String(200))
    message_ref: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLog(TenantScoped, Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
