"""surveys: survey_tallies (the answers counted, read by the results), surveys.asked, answers indexed to the token

Revision ID: surveys_0002
Revises: surveys_0001
"""
from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "surveys_0002"
down_revision = "surveys_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("surveys", sa.Column("asked", sa.Integer(), nullable=True))
    op.create_table(
        "survey_tallies",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("user_type", sa.String(length=20), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name=op.f("fk_survey_tallies_survey_id_surveys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("survey_id", "question_id", "value", "user_type", "department", "site",
                                name=op.f("pk_survey_tallies")),
        sqlite_with_rowid=False,
    )
    # The texts shown are read in the answer sets' (random) token order from a random point:
    # the index ends with the token (SQLite's already did: WITHOUT ROWID indexes carry the key).
    op.drop_index("ix_survey_answers_survey_question", table_name="survey_answers")
    op.create_index("ix_survey_answers_survey_question_set", "survey_answers", ["survey_id", "question_id", "answer_set"],
                    unique=False)
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """Tallies of the answers already stored (the same counting as store/surveys.py `_tally`)."""
    conn.execute(sa.text("UPDATE surveys SET asked = (SELECT count(*) FROM survey_participants p WHERE p.survey_id = surveys.id)"))
    kinds = {qid: kind for qid, kind in conn.execute(sa.text("SELECT id, kind FROM survey_questions"))}
    counts: Counter[tuple[str, int, int, int, str, str, str]] = Counter()
    for tenant, survey, kind, department, site in conn.execute(sa.text(
            "SELECT tenant, survey_id, user_type, department, site FROM survey_answer_sets")):
        counts[(tenant, survey, 0, 0, kind or "", department or "", site or "")] += 1
    for tenant, survey, qid, value, choices, text, kind, department, site in conn.execute(sa.text(
            "SELECT a.tenant, a.survey_id, a.question_id, a.value, a.choices, a.text, s.user_type, s.department, s.site "
            "FROM survey_answers a JOIN survey_answer_sets s ON s.token = a.answer_set")):
        labels = (kind or "", department or "", site or "")
        if kinds.get(qid) in ("scale5", "enps", "single") and value is not None:
            counts[(tenant, survey, qid, value, *labels)] += 1
        elif kinds.get(qid) == "text" and text:
            counts[(tenant, survey, qid, -1, "", "", "")] += 1
        elif kinds.get(qid) == "multiple":
            chosen = json.loads(choices) if isinstance(choices, str) else choices
            if chosen:
                counts[(tenant, survey, qid, -1, *labels)] += 1
                for index in set(chosen):
                    counts[(tenant, survey, qid, int(index), *labels)] += 1
    if counts:
        conn.execute(sa.text(
            "INSERT INTO survey_tallies (tenant, survey_id, question_id, value, user_type, department, site, count) "
            "VALUES (:t, :s, :q, :v, :k, :d, :si, :n)"),
            [{"t": t, "s": s, "q": q, "v": v, "k": k, "d": d, "si": si, "n": n} for (t, s, q, v, k, d, si), n in counts.items()])


def downgrade() -> None:
    op.drop_index("ix_survey_answers_survey_question_set", table_name="survey_answers")
    op.create_index("ix_survey_answers_survey_question", "survey_answers", ["survey_id", "question_id"], unique=False)
    op.drop_table("survey_tallies")
    op.drop_column("surveys", "asked")
