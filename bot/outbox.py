"""The outbox: every send that is not a passive reply goes through this table.

A worker claims due rows one at a time with a conditional UPDATE (so two instances never
claim the same row), sends, and records the outcome. Temporary errors are retried with
exponential backoff; permanent ones are recorded and not retried. A row left ``sending`` by a
process that died is picked up again once its lease has run out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from bot.storage.models import Outbox

log = logging.getLogger(__name__)

Sender = Callable[[str, dict[str, Any]], Awaitable[None]]
LEASE = timedelta(seconds=60)


def is_temporary(exc: BaseException) -> bool:
    return bool(getattr(exc, "temporary", isinstance(exc, (TimeoutError, OSError))))


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        config: OutboxConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.senders = senders
        self.config = config
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                sent = await self.work_once()
            except Exception:
                log.exception("outbox pass failed")
                sent = 0
            if sent == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
                except TimeoutError:
                    pass

    async def work_once(self, limit: int = 50) -> int:
        """Send what is due now; returns how many rows were attempted."""
        now = self.clock()
        async with self.sessions() as session:
            ids = (
                (
                    await session.execute(
                        select(Outbox.id)
                        .where(
                            or_(
                                (Outbox.status == "pending") & (Outbox.next_attempt_at <= now),
                                (Outbox.status == "sending") & (Outbox.locked_until < now),
                            )
                        )
                        .order_by(Outbox.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        attempted = 0
        for row_id in ids:
            row = await self._claim(row_id)
            if row is not None:
                attempted += 1
                await self._send(row)
        return attempted

    async def _claim(self, row_id: int) -> Outbox | None:
        now = self.clock()
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Outbox)
                .where(
                    Outbox.id == row_id,
                    or_(
                        (Outbox.status == "pending") & (Outbox.next_attempt_at <= now),
                        (Outbox.status == "sending") & (Outbox.locked_until < now),
                    ),
                )
                .values(status="sending", locked_until=now + LEASE, attempts=Outbox.attempts + 1)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker took it
            return await session.get(Outbox, row_id)

    async def _send(self, row: Outbox) -> None:
        sender = self.senders.get(row.channel)
        values: dict[str, Any]
        if sender is None:
            values = {"status": "failed", "last_error": f"no sender for channel {row.channel}"}
        else:
            try:
                await sender(row.recipient, row.payload)
                values = {"status": "sent", "sent_at": self.clock(), "last_error": None}
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                if is_temporary(exc) and row.attempts < self.config.max_attempts:
                    delay = self.config.backoff_seconds * (2 ** (row.attempts - 1))
                    values = {
                        "status": "pending",
                        "last_error": error,
                        "next_attempt_at": self.clock() + timedelta(seconds=delay),
                    }
                else:
                    values = {"status": "failed", "last_error": error}
                log.warning(
                    "send failed",
                    extra={
                        "outbox_id": row.id,
                        "channel": row.channel,
                        "error": error,
                        "final": values["status"],
                    },
                )
        async with self.sessions.begin() as session:
            await session.execute(
                update(Outbox).where(Outbox.id == row.id).values(locked_until=None, **values)
            )
