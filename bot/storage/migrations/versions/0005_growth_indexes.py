"""partial indexes for the scans that would otherwise read whole tables as they grow: the
messages left unfinished by a crash (read at every start) and the forms in progress (read by
the idle-form sweep every minute)

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    processing = sa.text("status = 'processing'")
    op.create_index(
        "ix_messages_processing",
        "messages",
        ["created_at"],
        sqlite_where=processing,
        postgresql_where=processing,
    )
    with_state = sa.text("state IS NOT NULL")
    op.create_index(
        "ix_conversations_state",
        "conversations",
        ["state", "updated_at"],
        sqlite_where=with_state,
        postgresql_where=with_state,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_state", "conversations")
    op.drop_index("ix_messages_processing", "messages")
