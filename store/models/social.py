"""The message index: what was said where, with hashtags and mentions (social-graph issue)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, TenantScoped, UTCDateTime


class Message(TenantScoped, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("tenant", "conversation_id", "external_id"),
        Index("ix_messages_author_time", "tenant", "author_id", "sent_at"),
        Index("ix_messages_conv_time", "tenant", "conversation_id", "sent_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=True)
    thread_external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    permalink: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    reaction_count: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Topic(TenantScoped, Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("tenant", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageTopic(TenantScoped, Base):
    """A hashtag on a message. `sent_at` and `conversation_id` are copied from the message so
    the feed and topic cards read a topic's newest posts straight off one index."""

    __tablename__ = "message_topics"
    __table_args__ = (
        UniqueConstraint("message_id", "topic_id"),
        Index("ix_message_topics_topic", "tenant", "topic_id", "message_id"),
        Index("ix_message_topics_topic_time", "tenant", "topic_id", "sent_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MessageMention(TenantScoped, Base):
    __tablename__ = "message_mentions"
    __table_args__ = (
        UniqueConstraint("message_id", "person_id"),
        Index("ix_message_mentions_person", "tenant", "person_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))


class Follow(TenantScoped, Base):
    """Someone follows a person or a topic. `level` "subscribe" also pings in real time.

    `target_key` ("p:<person id>" / "t:<topic id>") gives one unique row per pair;
    the typed foreign keys make erasure cascade and followers queries indexable."""

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("follower_id", "target_key"),
        Index("ix_follows_person", "tenant", "person_id"),
        Index("ix_follows_topic", "tenant", "topic_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    target_key: Mapped[str] = mapped_column(String(40))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=True)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), nullable=True)
    level: Mapped[str] = mapped_column(String(10), default="follow")  # follow | subscribe
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IndexOptOut(TenantScoped, Base):
    """`privacy me off`: this person's messages are not indexed."""

    __tablename__ = "index_opt_outs"
    __table_args__ = (UniqueConstraint("person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
