"""cases, case events, worker inbox

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.storage.models import UTCDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("conversation_key", sa.String(255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("assignee", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("first_response_at", UTCDateTime()),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("first_response_due", UTCDateTime(), nullable=False),
        sa.Column("resolution_due", UTCDateTime(), nullable=False),
        sa.Column("escalated", sa.String(32), nullable=False),
        sa.Column("satisfaction", sa.Integer()),
    )
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_index("ix_cases_conversation", "cases", ["conversation_key"])
    op.create_table(
        "case_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    op.create_table(
        "worker_inbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("conversation_key", sa.String(255), nullable=False),
        sa.Column("case_id", BigId, sa.ForeignKey("cases.id")),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
    )
    op.create_index("ix_worker_inbox_conversation_key", "worker_inbox", ["conversation_key"])


def downgrade() -> None:
    for table in ("worker_inbox", "case_events", "cases"):
        op.drop_table(table)
