"""chat forms: submissions, status changes, number counters, digest log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.storage.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "form_submissions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("form_id", sa.String(32), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("chat_id", sa.String(128)),
        sa.Column("conversation_key", sa.String(255), nullable=False),
        sa.Column("source_key", sa.String(300), nullable=False, unique=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("form_id", "day", "seq"),
    )
    op.create_index("ix_form_submissions_day", "form_submissions", ["form_id", "day"])
    op.create_index(
        "ix_form_submissions_user", "form_submissions", ["channel", "account", "user_id"]
    )
    op.create_table(
        "form_status_changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "submission_id", BigId, sa.ForeignKey("form_submissions.id"), nullable=False
        ),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_form_status_changes_submission_id", "form_status_changes", ["submission_id"]
    )
    op.create_table(
        "form_counters",
        sa.Column("form_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.create_table(
        "form_digests",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("form_digests", "form_counters", "form_status_changes", "form_submissions"):
        op.drop_table(table)
