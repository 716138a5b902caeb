"""scheduled pushes: broadcasts, runs, deliveries, subscriptions, scheduler heartbeat

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.storage.models import UTCDateTime

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("definition", sa.JSON()),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "broadcast_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("broadcast_id", sa.String(64), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255)),
        sa.Column("form_id", sa.String(64)),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("messages_mark", sa.BigInteger(), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expanded_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.UniqueConstraint("broadcast_id", "scheduled_at"),
    )
    op.create_index("ix_broadcast_runs_status", "broadcast_runs", ["status"])
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            BigId,
            sa.ForeignKey("broadcast_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("user_id", sa.BigInteger()),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("note", sa.String(64)),
        sa.UniqueConstraint("run_id", "channel", "recipient"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "topic"),
    )
    op.create_index("ix_subscriptions_topic", "subscriptions", ["topic", "subscribed"])
    op.create_table(
        "scheduler_heartbeat",
        sa.Column("instance", sa.String(64), primary_key=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_topic", "subscriptions")
    op.drop_index("ix_broadcast_runs_status", "broadcast_runs")
    for table in ("scheduler_heartbeat", "subscriptions", "deliveries", "broadcast_runs"):
        op.drop_table(table)
    op.drop_table("broadcasts")
