"""APScheduler 3 set-up: one job per broadcast, rebuilt from the definitions at start.

The jobs live in the memory job store with explicit ids (``broadcast:<id>``,
``replace_existing=True``): nothing depends on pickled jobs. A job only wakes the engine,
which finds what is due in the database; a check every ``broadcasts.check_seconds`` (and one
at start, the catch-up) finds whatever a wake-up missed, so APScheduler's misfire handling
never decides whether the 08:00 prompt goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.engine import BroadcastEngine
from scheduler.schedules import next_fire

log = logging.getLogger(__name__)

JOB_PREFIX = "broadcast:"


class BroadcastScheduler:
    def __init__(self, engine: BroadcastEngine) -> None:
        self.engine = engine
        self.check_seconds = engine.config.check_seconds
        self.aps = AsyncIOScheduler(
            timezone=engine.tz,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                # The engine decides about late firings; APScheduler should still wake it.
                "misfire_grace_time": max(60, engine.config.grace_minutes * 60),
            },
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0  # completed checks (tests wait for the start-up catch-up)

    def sync_jobs(self) -> None:
        now = self.engine.clock()
        wanted = {}
        for item in self.engine.definitions.values():
            trigger = self.engine.triggers[item.id]
            if item.enabled and next_fire(trigger, now) is not None:
                wanted[JOB_PREFIX + item.id] = (item, trigger)
        for job in self.aps.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                job.remove()
        for job_id, (item, trigger) in wanted.items():
            self.aps.add_job(
                self._fire,
                trigger,
                id=job_id,
                name=item.title,
                args=[item.id],
                replace_existing=True,
            )

    async def _fire(self, broadcast_id: str) -> None:
        self._wake.set()

    async def start(self) -> None:
        self.sync_jobs()
        self.engine.listeners.append(self.sync_jobs)
        self.aps.start()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.sync_jobs in self.engine.listeners:
            self.engine.listeners.remove(self.sync_jobs)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.aps.running:
            self.aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.engine.tick()
            except Exception:
                log.exception("broadcast check failed")
            self.ticks += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.check_seconds)
