"""Runs in the database: created once per broadcast and scheduled time, leased to the
instance that expands the audience, closed when every delivery is settled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Outbox
from bot.storage.repo import upsert_insert
from scheduler.models import BroadcastRun, BroadcastState, Delivery, SchedulerHeartbeat

# An instance renews its lease while it expands an audience; one that died loses it after this.
LEASE = timedelta(seconds=60)


async def create_run(
    session: AsyncSession,
    *,
    broadcast_id: str,
    scheduled_at: datetime,
    trigger: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    form_id: str | None = None,
    instance: str = "",
    messages_mark: int = 0,
) -> int | None:
    """The new run's id, or None when this broadcast already has a run at ``scheduled_at``
    (another instance, or this one before a restart, was first)."""
    stmt = (
        upsert_insert(session, BroadcastRun)
        .values(
            broadcast_id=broadcast_id,
            scheduled_at=scheduled_at,
            trigger=trigger,
            status=status,
            reason=reason,
            form_id=form_id,
            recipients=0,
            messages_mark=messages_mark,
            instance=instance,
            lease_until=now + LEASE if status == "expanding" else None,
            created_at=now,
            finished_at=now if status == "skipped" else None,
        )
        .on_conflict_do_nothing(index_elements=["broadcast_id", "scheduled_at"])
        .returning(BroadcastRun.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    return None if new_id is None else int(new_id)


async def last_scheduled(session: AsyncSession) -> dict[str, datetime]:
    """The latest scheduled firing each broadcast has a run for (sent or skipped); manual runs
    do not count, so a run-now never hides a missed firing."""
    rows = await session.execute(
        select(BroadcastRun.broadcast_id, func.max(BroadcastRun.scheduled_at))
        .where(BroadcastRun.trigger != "manual")
        .group_by(BroadcastRun.broadcast_id)
    )
    return {broadcast_id: at for broadcast_id, at in rows}


async def take_lease(
    session: AsyncSession, run_id: int, instance: str, now: datetime, *, takeover: bool
) -> bool:
    """Renew our lease on an expanding run, or (``takeover``) take an expired one over."""
    owner = BroadcastRun.lease_until < now if takeover else BroadcastRun.instance == instance
    result = await session.execute(
        update(BroadcastRun)
        .where(BroadcastRun.id == run_id, BroadcastRun.status == "expanding", owner)
        .values(instance=instance, lease_until=now + LEASE)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


async def stale_runs(session: AsyncSession, now: datetime) -> list[BroadcastRun]:
    rows = await session.execute(
        select(BroadcastRun)
        .where(BroadcastRun.status == "expanding", BroadcastRun.lease_until < now)
        .order_by(BroadcastRun.id)
    )
    return list(rows.scalars())


async def finish_expanding(
    session: AsyncSession, run_id: int, instance: str, recipients: int, now: datetime
) -> bool:
    """The audience is all written: the run is ``sending`` (``done`` when nothing was queued:
    every recipient was left out with a note)."""
    queued = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .join(Outbox, Outbox.dedup_key == Delivery.dedup_key)
        .where(Delivery.run_id == run_id)
    )
    result = await session.execute(
        update(BroadcastRun)
        .where(
            BroadcastRun.id == run_id,
            BroadcastRun.status == "expanding",
            BroadcastRun.instance == instance,
        )
        .values(
            status="sending" if queued else "done",
            recipients=recipients,
            expanded_at=now,
            finished_at=None if queued else now,
            lease_until=None,
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


async def fail_run(session: AsyncSession, run_id: int, reason: str, now: datetime) -> None:
    await session.execute(
        update(BroadcastRun)
        .where(BroadcastRun.id == run_id, BroadcastRun.status == "expanding")
        .values(status="failed", reason=reason[:255], finished_at=now, lease_until=None)
    )


async def close_finished(session: AsyncSession, now: datetime) -> list[int]:
    """Mark ``done`` the sending runs with nothing left in the outbox (one statement)."""
    waiting = (
        select(Delivery.id)
        .join(Outbox, Outbox.dedup_key == Delivery.dedup_key)
        .where(Delivery.run_id == BroadcastRun.id, Outbox.status.in_(("pending", "sending")))
        .exists()
    )
    result = await session.execute(
        update(BroadcastRun)
        .where(BroadcastRun.status == "sending", ~waiting)
        .values(status="done", finished_at=now)
        .returning(BroadcastRun.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(int(i) for i in result.scalars())


@dataclass(frozen=True)
class RunStats:
    run: BroadcastRun
    counts: dict[str, int]  # sent, failed, pending, sending, and notes (not queued)

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


async def run_stats(session: AsyncSession, run: BroadcastRun) -> RunStats:
    rows = await session.execute(
        select(Outbox.status, Delivery.note, func.count())
        .select_from(Delivery)
        .outerjoin(Outbox, Outbox.dedup_key == Delivery.dedup_key)
        .where(Delivery.run_id == run.id)
        .group_by(Outbox.status, Delivery.note)
    )
    counts: dict[str, int] = {}
    for status, note, n in rows:
        key = status or note or "unqueued"
        counts[key] = counts.get(key, 0) + int(n)
    return RunStats(run, counts)


async def recent_runs(session: AsyncSession, broadcast_id: str, limit: int) -> list[BroadcastRun]:
    rows = await session.execute(
        select(BroadcastRun)
        .where(BroadcastRun.broadcast_id == broadcast_id)
        .order_by(BroadcastRun.scheduled_at.desc(), BroadcastRun.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def last_runs(session: AsyncSession) -> dict[str, BroadcastRun]:
    latest = (
        select(BroadcastRun.broadcast_id, func.max(BroadcastRun.id).label("id"))
        .group_by(BroadcastRun.broadcast_id)
        .subquery()
    )
    rows = await session.execute(select(BroadcastRun).join(latest, latest.c.id == BroadcastRun.id))
    return {run.broadcast_id: run for run in rows.scalars()}


# ── broadcast state and heartbeat ──────────────────────────────────────────────────────────


async def states(session: AsyncSession) -> dict[str, BroadcastState]:
    return {s.id: s for s in (await session.execute(select(BroadcastState))).scalars()}


async def ensure_states(session: AsyncSession, ids: list[str], first_seen: datetime) -> None:
    if not ids:
        return
    stmt = upsert_insert(session, BroadcastState).values(
        [
            {
                "id": i,
                "paused": False,
                "first_seen_at": first_seen,
                "updated_at": first_seen,
                "updated_by": "",
            }
            for i in ids
        ]
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def set_paused(
    session: AsyncSession, broadcast_id: str, paused: bool, actor: str, now: datetime
) -> None:
    stmt = upsert_insert(session, BroadcastState).values(
        id=broadcast_id, paused=paused, first_seen_at=now, updated_at=now, updated_by=actor
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"paused": paused, "updated_at": now, "updated_by": actor},
        )
    )


async def stored_definitions(session: AsyncSession) -> dict[str, dict[str, Any]]:
    rows = await session.execute(
        select(BroadcastState.id, BroadcastState.definition).where(
            BroadcastState.definition.is_not(None)
        )
    )
    return {i: dict(d) for i, d in rows if d}


async def last_heartbeat(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.max(SchedulerHeartbeat.seen_at)))


async def beat(session: AsyncSession, instance: str, now: datetime) -> None:
    stmt = upsert_insert(session, SchedulerHeartbeat).values(
        instance=instance, started_at=now, seen_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["instance"], set_={"seen_at": now})
    )
    # Instances that stopped long ago are of no further use.
    await session.execute(
        delete(SchedulerHeartbeat).where(SchedulerHeartbeat.seen_at < now - timedelta(days=7))
    )
