"""referents: suggestions, space requests (channels and access), welcome texts, first times in a channel

Revision ID: referents_0001
Revises: 0001_core
Create Date: 2026-11-30 21:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models.base

revision = "referents_0001"
down_revision = "0001_core"
branch_labels = ("referents",)
depends_on = None


def upgrade() -> None:
    op.create_table('suggestions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('source_key', sa.String(length=300), nullable=False),
    sa.Column('permalink', sa.String(length=500), nullable=False),
    sa.Column('route', sa.String(length=20), nullable=False),
    sa.Column('route_value', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('handler_id', sa.Integer(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('escalate_at', store.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', store.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['people.id'], name=op.f('fk_suggestions_author_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_suggestions_conversation_id_conversations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suggestions')),
    sa.UniqueConstraint('tenant', 'number', name=op.f('uq_suggestions_tenant_number')),
    sa.UniqueConstraint('tenant', 'source_key', name=op.f('uq_suggestions_tenant_source_key'))
    )
    with op.batch_alter_table('suggestions', schema=None) as batch_op:
        batch_op.create_index('ix_suggestions_author', ['tenant', 'author_id'], unique=False)
        batch_op.create_index('ix_suggestions_escalate', ['status', 'escalated_at', 'escalate_at'], unique=False)

    op.create_table('suggestion_routings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('suggestion_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('escalated', sa.Boolean(), nullable=False),
    sa.Column('routed_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_suggestion_routings_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['suggestion_id'], ['suggestions.id'], name=op.f('fk_suggestion_routings_suggestion_id_suggestions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suggestion_routings')),
    sa.UniqueConstraint('suggestion_id', 'person_id', name=op.f('uq_suggestion_routings_suggestion_id_person_id'))
    )
    with op.batch_alter_table('suggestion_routings', schema=None) as batch_op:
        batch_op.create_index('ix_suggestion_routings_person', ['tenant', 'person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_suggestion_routings_suggestion_id'), ['suggestion_id'], unique=False)

    op.create_table('space_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('source_key', sa.String(length=300), nullable=False),
    sa.Column('route', sa.String(length=20), nullable=False),
    sa.Column('route_value', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', store.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('done_at', store.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['people.id'], name=op.f('fk_space_requests_author_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_space_requests_conversation_id_conversations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_space_requests')),
    sa.UniqueConstraint('tenant', 'number', name=op.f('uq_space_requests_tenant_number')),
    sa.UniqueConstraint('tenant', 'source_key', name=op.f('uq_space_requests_tenant_source_key'))
    )
    with op.batch_alter_table('space_requests', schema=None) as batch_op:
        batch_op.create_index('ix_space_requests_author', ['tenant', 'author_id'], unique=False)

    op.create_table('space_routings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('routed_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_space_routings_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['space_requests.id'], name=op.f('fk_space_routings_request_id_space_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_space_routings')),
    sa.UniqueConstraint('request_id', 'person_id', name=op.f('uq_space_routings_request_id_person_id'))
    )
    with op.batch_alter_table('space_routings', schema=None) as batch_op:
        batch_op.create_index('ix_space_routings_person', ['tenant', 'person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_space_routings_request_id'), ['request_id'], unique=False)

    op.create_table('welcome_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('text_en', sa.Text(), nullable=False),
    sa.Column('text_fr', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_welcome_texts_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_welcome_texts')),
    sa.UniqueConstraint('conversation_id', name=op.f('uq_welcome_texts_conversation_id'))
    )

    op.create_table('channel_firsts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('created_at', store.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_channel_firsts_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_channel_firsts_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_firsts')),
    sa.UniqueConstraint('conversation_id', 'person_id', 'kind', name=op.f('uq_channel_firsts_conversation_id_person_id_kind'))
    )
    with op.batch_alter_table('channel_firsts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_firsts_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    op.drop_table("channel_firsts")
    op.drop_table("welcome_texts")
    op.drop_table("space_routings")
    op.drop_table("space_requests")
    op.drop_table("suggestion_routings")
    op.drop_table("suggestions")
