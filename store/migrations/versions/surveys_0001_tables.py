"""surveys: surveys, questions, participants, answer sets, answers, named answers

Revision ID: surveys_0001
Revises: 0001_core
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "surveys_0001"
down_revision = "0001_core"
branch_labels = ("surveys",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("audience_kind", sa.String(length=20), nullable=False),
        sa.Column("audience_value", sa.String(length=200), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("closes_on", sa.Date(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("recurrence", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["people.id"], name=op.f("fk_surveys_author_id_people"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
    )
    op.create_index("ix_surveys_tenant_status", "surveys", ["tenant", "status"], unique=False)

    op.create_table(
        "survey_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name=op.f("fk_survey_questions_survey_id_surveys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_questions")),
        sa.UniqueConstraint("survey_id", "position", name=op.f("uq_survey_questions_survey_id_position")),
    )

    op.create_table(
        "survey_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("invited", sa.Boolean(), nullable=False),
        sa.Column("reminded", sa.Integer(), nullable=False),
        sa.Column("claim", sa.String(length=40), nullable=True),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_survey_participants_person_id_people"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name=op.f("fk_survey_participants_survey_id_surveys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_participants")),
        sa.UniqueConstraint("survey_id", "person_id", name=op.f("uq_survey_participants_survey_id_person_id")),
    )
    op.create_index("ix_survey_participants_survey_state", "survey_participants", ["survey_id", "state", "invited"], unique=False)

    op.create_table(
        "survey_answer_sets",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("user_type", sa.String(length=20), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name=op.f("fk_survey_answer_sets_survey_id_surveys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_survey_answer_sets")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_survey_answer_sets_survey", "survey_answer_sets", ["survey_id"], unique=False)

    op.create_table(
        "survey_answers",
        sa.Column("answer_set", sa.String(length=40), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("choices", sa.JSON(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["answer_set"], ["survey_answer_sets.token"], name=op.f("fk_survey_answers_answer_set_survey_answer_sets"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["question_id"], ["survey_questions.id"], name=op.f("fk_survey_answers_question_id_survey_questions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name=op.f("fk_survey_answers_survey_id_surveys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("answer_set", "question_id", name=op.f("pk_survey_answers")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_survey_answers_survey_question", "survey_answers", ["survey_id", "question_id"], unique=False)

    op.create_table(
        "survey_named_answers",
        sa.Column("answer_set", sa.String(length=40), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["answer_set"], ["survey_answer_sets.token"], name=op.f("fk_survey_named_answers_answer_set_survey_answer_sets"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_survey_named_answers_person_id_people"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name=op.f("fk_survey_named_answers_survey_id_surveys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("answer_set", name=op.f("pk_survey_named_answers")),
        sa.UniqueConstraint("survey_id", "person_id", name=op.f("uq_survey_named_answers_survey_id_person_id")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("survey_named_answers")
    op.drop_table("survey_answers")
    op.drop_table("survey_answer_sets")
    op.drop_table("survey_participants")
    op.drop_table("survey_questions")
    op.drop_table("surveys")
