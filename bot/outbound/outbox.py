"""The outbox: every send that is not a passive reply goes through this table.

A worker claims a batch of due rows with one conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, SQLite's single writer elsewhere), so two instances never claim the same row. It
sends them concurrently, one recipient's rows in order, each after the rate limiter allows it,
and records the outcomes in small group commits while the sends go on. Temporary errors are
retried with exponential backoff; permanent ones are recorded and not retried. A row the rate
limiter would hold too long goes back to the queue, due when the limiter has room.

A row left ``sending`` by a process that died is sent again once its lease has run out: a
send that reached WeChat just before the crash is then sent twice (WeChat offers no way to
ask). Senders that can should make that harmless (WeCom's duplicate check, for one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxConfig
from bot.storage.models import Outbox

log = logging.getLogger(__name__)

Sender = Callable[[str, dict[str, Any]], Awaitable[None]]
LEASE = timedelta(seconds=60)
BATCH = 200  # rows claimed at once
CONCURRENCY = 32  # sends in flight at once
FLUSH_SECONDS = 0.05  # outcomes are written at least this often while a batch is sending
MAX_RATE_WAIT = 1.0  # a send the limiter would hold longer than this goes back to the queue


class Channel(StrEnum):
    """What an outbox row is sent through (the ``outbox.channel`` column). Feature channels are
    named here too, so the column has one list of values; their senders live with the feature."""

    MP_CS = "mp_cs"  # Official Account customer-service message (48-hour window)
    WORK_APP = "work_app"  # WeCom app message to a cadre
    ROBOT = "robot"  # WeCom group robot (webhook)
    AIBOT_URL = "aibot_url"  # WeCom intelligent robot: a late reply to its response_url
    CASE_REPLY = "case_reply"  # a cadre's answer: pushed, sent as a template, or parked
    BCAST_MP = "bcast_mp"  # broadcasts: to an Official Account follower
    BCAST_WORK = "bcast_work"  # broadcasts: to a WeCom member
    BCAST_APPCHAT = "bcast_appchat"  # broadcasts: to a WeCom group chat


class SendLimiter(Protocol):
    def reserve(self, channel: str, recipient: str, max_wait: float) -> tuple[bool, float]:
        """(True, wait): the send is counted and may go after ``wait`` seconds. (False, wait):
        it would have to wait ``wait`` > ``max_wait`` seconds; nothing was counted."""
        ...

    def sent(self, channel: str, latency: float) -> None:
        """The send answered ``latency`` seconds after the moment it was allowed to go."""
        ...


def is_temporary(exc: BaseException) -> bool:
    return bool(getattr(exc, "temporary", isinstance(exc, (TimeoutError, OSError))))


@dataclass(slots=True)
class _Claimed:
    id: int
    channel: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


@dataclass(slots=True)
class _Outcome:
    id: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None = None


def _due(now: datetime) -> Any:
    return or_(
        (Outbox.status == "pending") & (Outbox.next_attempt_at <= now),
        (Outbox.status == "sending") & (Outbox.locked_until < now),
    )


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        config: OutboxConfig,
        clock: Callable[[], datetime],
        limiter: SendLimiter | None = None,
    ) -> None:
        self.sessions = sessions
        self.senders = senders
        self.config = config
        self.clock = clock
        self.limiter = limiter
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)

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
                idle = await self._idle_seconds()
                # asyncio.timeout, not wait_for: cancelling at shutdown leaves no coroutine
                # that was never awaited.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle):
                        await self._wake.wait()

    async def _idle_seconds(self) -> float:
        """Until the next row is due, within the poll interval: a broadcast paced over a
        minute is sent on time, not a poll later."""
        poll = self.config.poll_seconds
        try:
            async with self.sessions() as session:
                due = await session.scalar(
                    select(func.min(Outbox.next_attempt_at)).where(Outbox.status == "pending")
                )
        except Exception:
            return poll
        if due is None:
            return poll
        return min(poll, max(0.02, (due - self.clock()).total_seconds()))

    async def work_once(self, limit: int = BATCH) -> int:
        """Send what is due now; returns how many rows were attempted."""
        rows = await self._claim(limit)
        if not rows:
            return 0
        groups: dict[tuple[str, str], list[_Claimed]] = defaultdict(list)
        for row in rows:
            groups[(row.channel, row.recipient)].append(row)
        outcomes: list[_Outcome] = []
        attempted = 0

        async def send_in_order(group: list[_Claimed]) -> None:
            nonlocal attempted
            held_for: float | None = None
            for row in group:
                if held_for is None:
                    async with self._slots:
                        held_for, slot = await self._wait_for_rate(row)
                        if held_for is None:
                            attempted += 1
                            outcomes.append(await self._attempt(row))
                            if self.limiter is not None:
                                self.limiter.sent(row.channel, time.monotonic() - slot)
                            continue
                # Held by the rate limiter: this row and the recipient's later ones wait.
                outcomes.append(self._held(row, held_for))

        tasks = [asyncio.create_task(send_in_order(g)) for g in groups.values()]
        try:
            pending: set[asyncio.Task[None]] = set(tasks)
            while pending:
                _, pending = await asyncio.wait(pending, timeout=FLUSH_SECONDS)
                await self._flush(outcomes)
        finally:
            # On shutdown, record what was sent before going: fewer sends left in doubt.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._flush(outcomes)
        return attempted

    async def _wait_for_rate(self, row: _Claimed) -> tuple[float | None, float]:
        """Wait for the limiter: (None, slot) when the row may go now, its slot the moment
        it was allowed to (monotonic clock); else (how long it is held, 0)."""
        if self.limiter is None:
            return None, time.monotonic()
        allowed, wait = self.limiter.reserve(row.channel, row.recipient, MAX_RATE_WAIT)
        if not allowed:
            return wait, 0.0
        slot = time.monotonic() + wait
        if wait > 0:
            await asyncio.sleep(wait)
        return None, slot

    async def _claim(self, limit: int) -> list[_Claimed]:
        now = self.clock()
        async with self.sessions.begin() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            stale = (
                select(Outbox.id)
                .where(Outbox.status == "sending", Outbox.locked_until < now)
                .order_by(Outbox.id)
                .limit(limit)
            )
            due = (
                select(Outbox.id)
                .where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(limit)
            )
            if postgres:
                # Rows another instance is claiming right now are skipped, not waited for.
                stale = stale.with_for_update(skip_locked=True)
                due = due.with_for_update(skip_locked=True)
            ids = list((await session.execute(stale)).scalars())
            if len(ids) < limit:
                ids += list((await session.execute(due.limit(limit - len(ids)))).scalars())
            if not ids:
                return []
            # The WHERE checks again that each row is still due: whoever changed it in between
            # (another instance, on SQLite) keeps it.
            result = await session.execute(
                update(Outbox)
                .where(Outbox.id.in_(ids), _due(now))
                .values(status="sending", locked_until=now + LEASE, attempts=Outbox.attempts + 1)
                .returning(
                    Outbox.id,
                    Outbox.channel,
                    Outbox.recipient,
                    Outbox.payload,
                    Outbox.attempts,
                    Outbox.next_attempt_at,
                    Outbox.last_error,
                )
                .execution_options(synchronize_session=False)
            )
            rows = [_Claimed(*r) for r in result]
        rows.sort(key=lambda r: (r.next_attempt_at, r.id))
        return rows

    async def _attempt(self, row: _Claimed) -> _Outcome:
        sender = self.senders.get(row.channel)
        if sender is None:
            error = f"no sender for channel {row.channel}"
            return _Outcome(row.id, "failed", row.attempts, row.next_attempt_at, error)
        try:
            await sender(row.recipient, row.payload)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if is_temporary(exc) and row.attempts < self.config.max_attempts:
                delay = self.config.backoff_seconds * (2 ** (row.attempts - 1))
                retry_at = self.clock() + timedelta(seconds=delay)
                outcome = _Outcome(row.id, "pending", row.attempts, retry_at, error)
            else:
                outcome = _Outcome(row.id, "failed", row.attempts, row.next_attempt_at, error)
            log.warning(
                "send failed",
                extra={
                    "outbox_id": row.id,
                    "channel": row.channel,
                    "error": error,
                    "final": outcome.status,
                },
            )
            return outcome
        return _Outcome(row.id, "sent", row.attempts, row.next_attempt_at, None, self.clock())

    def _held(self, row: _Claimed, wait: float) -> _Outcome:
        # Not an attempt: give the attempt back, keep the last error.
        retry_at = self.clock() + timedelta(seconds=wait)
        return _Outcome(row.id, "pending", row.attempts - 1, retry_at, row.last_error)

    async def _flush(self, outcomes: list[_Outcome]) -> None:
        if not outcomes:
            return
        batch = outcomes[:]
        del outcomes[:]
        await self._write(batch)

    async def _write(self, batch: Sequence[_Outcome]) -> None:
        table = cast(Table, Outbox.__table__)
        async with self.sessions.begin() as session:
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(
                    status=bindparam("b_status"),
                    attempts=bindparam("b_attempts"),
                    next_attempt_at=bindparam("b_next"),
                    last_error=bindparam("b_error"),
                    sent_at=bindparam("b_sent"),
                    locked_until=None,
                ),
                [
                    {
                        "b_id": o.id,
                        "b_status": o.status,
                        "b_attempts": o.attempts,
                        "b_next": o.next_attempt_at,
                        "b_error": o.last_error,
                        "b_sent": o.sent_at,
                    }
                    for o in batch
                ],
            )
