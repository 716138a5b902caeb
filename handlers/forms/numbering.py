"""Submission numbers a worker can quote: 药-20261122-0007, per form per Beijing day.

The sequence comes from one atomic upsert on ``form_counters``:
``INSERT … ON CONFLICT (form_id, day) DO UPDATE SET value = value + 1 RETURNING value``.
PostgreSQL locks the counter row until the submitting transaction commits, and SQLite has one
writer at a time, so two instances never get the same value; the unique ``number`` column on
``form_submissions`` is the second guard. The bump rolls back with a failed submission, so
numbers have no gaps.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.repo import upsert_insert
from handlers.forms.models import FormCounter


def format_number(prefix: str, day: date, seq: int) -> str:
    return f"{prefix}-{day:%Y%m%d}-{seq:04d}"


async def next_seq(session: AsyncSession, form_id: str, day: date) -> int:
    """Take the next sequence number of ``form_id`` on ``day`` inside the caller's
    transaction."""
    stmt = (
        upsert_insert(session, FormCounter)
        .values(form_id=form_id, day=day.isoformat(), value=1)
        .on_conflict_do_update(
            index_elements=["form_id", "day"], set_={"value": FormCounter.value + 1}
        )
        .returning(FormCounter.value)
    )
    return int((await session.execute(stmt)).scalar_one())
