"""The broadcast engine: what is due, and the runs that send it.

``tick(now)`` is the whole firing logic and may be called at any time, by any number of
instances: it reads from the database when each broadcast last fired, creates a run for each
firing that is due (one per broadcast and scheduled time, whoever is first), records firings
it skips (missed beyond the grace window, paused, disabled, or superseded by a later one),
takes over runs whose expanding instance died, and closes runs that are fully sent. The
APScheduler jobs only call it at the right moments (scheduler/jobs.py); tests call it with
the time they want.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from bot.outbound.ratelimit import build_limiter
from bot.services import Services
from scheduler import audiences, delivery, runs, surveys
from scheduler.definitions import Broadcast, DefinitionError, check_topics, parse_broadcast
from scheduler.schedules import after_quiet_hours, build_trigger, fire_times

log = logging.getLogger(__name__)

# Firings further back than this are not looked for (nor recorded as skipped).
LOOKBACK = timedelta(days=2)
# A firing handled this late is still "on schedule"; later, it is a catch-up.
ON_TIME = timedelta(minutes=1)


class UnknownBroadcast(KeyError):
    pass


class LeaseLost(Exception):
    """Another instance took the run over (ours had run out): it finishes the expansion."""


@dataclass
class TickReport:
    fired: list[int] = field(default_factory=list)  # runs created and expanded by this tick
    skipped: list[tuple[str, datetime, str]] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


def default_instance() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class BroadcastEngine:
    def __init__(self, services: Services, definitions: Mapping[str, Broadcast]) -> None:
        self.services = services
        self.config = services.config.broadcasts
        self.tz = ZoneInfo(self.config.timezone)
        self.grace = timedelta(minutes=self.config.grace_minutes)
        self.limiter = build_limiter(services.config.outbox)  # its rates pace the outbox rows
        self.instance = default_instance()
        self._files = dict(definitions)
        self._stored: dict[str, dict[str, Any]] = {}
        self.definitions: dict[str, Broadcast] = {}
        self.triggers: dict[str, Any] = {}
        self._composers: dict[str, delivery.Composer] = {}
        self._lock = asyncio.Lock()
        # Called when the set of definitions changes (the scheduler rebuilds its jobs).
        self.listeners: list[Callable[[], None]] = []
        check_topics(self._files.values(), self.config.topics)
        for item in self._files.values():
            self._install(item)

    @property
    def sessions(self) -> Any:
        return self.services.sessions

    def clock(self) -> datetime:
        return self.services.clock()

    # ── definitions ──────────────────────────────────────────────────────────────────────

    def _prepare(self, item: Broadcast) -> tuple[Any, delivery.Composer]:
        """Check a definition completely: trigger, template, a sample rendering."""
        try:
            trigger = build_trigger(item.schedule, self.tz)
            composer = delivery.Composer(self.services.render, item)
            delivery.check_renders(composer, self._context(item, self.clock()))
        except (ValueError, jinja2.TemplateError) as exc:
            raise DefinitionError(f"{item.source}: {exc}") from None
        return trigger, composer

    def _install(self, item: Broadcast) -> None:
        self.triggers[item.id], self._composers[item.id] = self._prepare(item)
        self.definitions[item.id] = item

    def check(self, item: Broadcast) -> None:
        """Raise DefinitionError when ``item`` could not be used (the CLI asks before adding)."""
        check_topics([item], self.config.topics)
        self._prepare(item)

    async def refresh(self) -> bool:
        """Take up definitions added or removed from the command line; True when changed."""
        async with self.sessions() as session:
            stored = await runs.stored_definitions(session)
        if stored == self._stored:
            return False
        self._stored = stored
        wanted = dict(self._files)
        for ident, raw in stored.items():
            if ident in self._files:
                log.warning(
                    "stored broadcast ignored: a content file has the same id", extra={"id": ident}
                )
                continue
            try:
                item = parse_broadcast(raw, "database")
                check_topics([item], self.config.topics)
            except DefinitionError as exc:
                log.error("stored broadcast is invalid", extra={"id": ident, "error": str(exc)})
                continue
            wanted[ident] = item
        self.definitions, self.triggers, self._composers = {}, {}, {}
        for item in wanted.values():
            try:
                self._install(item)
            except DefinitionError as exc:
                log.error("broadcast not scheduled", extra={"id": item.id, "error": str(exc)})
        for listener in self.listeners:
            listener()
        return True

    def get(self, broadcast_id: str) -> Broadcast:
        try:
            return self.definitions[broadcast_id]
        except KeyError:
            raise UnknownBroadcast(broadcast_id) from None

    # ── firing ───────────────────────────────────────────────────────────────────────────

    async def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.clock()
        report = TickReport()
        async with self._lock:
            await self.refresh()
            async with self.sessions.begin() as session:
                # A broadcast new to the database counts its missed firings from when a
                # scheduler was last seen: a release that adds one during downtime still
                # catches up inside the grace window.
                seen = await runs.last_heartbeat(session)
                first_seen = min(now, seen) if seen is not None else now
                await runs.ensure_states(session, list(self.definitions), first_seen)
                await runs.beat(session, self.instance, now)
            async with self.sessions() as session:
                states = await runs.states(session)
                latest = await runs.last_scheduled(session)
            for item in list(self.definitions.values()):
                state = states.get(item.id)
                since = latest.get(item.id) or (state.first_seen_at if state else now)
                due = fire_times(self.triggers[item.id], max(since, now - LOOKBACK), now)
                if due:
                    paused = state is not None and state.paused
                    await self._handle_due(item, due, paused, now, report)
            await self._resume_stale(now, report)
            async with self.sessions.begin() as session:
                report.closed = await runs.close_finished(session, now)
        return report

    async def _handle_due(
        self,
        item: Broadcast,
        due: list[datetime],
        paused: bool,
        now: datetime,
        report: TickReport,
    ) -> None:
        for n, moment in enumerate(due):
            late = now - moment
            if not item.enabled:
                reason = "disabled"
            elif paused:
                reason = "paused"
            elif late > self.grace:
                minutes = int(late.total_seconds() // 60)
                reason = f"missed: {minutes} min late, grace is {self.config.grace_minutes} min"
            elif n < len(due) - 1:
                reason = "superseded by a later firing"  # one catch-up push, not several
            else:
                trigger = "schedule" if late <= ON_TIME else "catch-up"
                run_id = await self.fire(item, moment, trigger, now)
                if run_id is not None:
                    report.fired.append(run_id)
                continue
            async with self.sessions.begin() as session:
                created = await runs.create_run(
                    session,
                    broadcast_id=item.id,
                    scheduled_at=moment,
                    trigger="schedule",
                    status="skipped",
                    reason=reason,
                    form_id=item.form,
                    now=now,
                )
            if created is not None:
                report.skipped.append((item.id, moment, reason))
                log.warning(
                    "broadcast firing skipped",
                    extra={
                        "broadcast": item.id,
                        "scheduled_at": moment.isoformat(),
                        "reason": reason,
                    },
                )

    async def fire(
        self, item: Broadcast, scheduled_at: datetime, trigger: str, now: datetime
    ) -> int | None:
        """Create the run for this firing and queue its deliveries; None when the run exists
        already (another instance fired it)."""
        async with self.sessions.begin() as session:
            run_id = await runs.create_run(
                session,
                broadcast_id=item.id,
                scheduled_at=scheduled_at,
                trigger=trigger,
                status="expanding",
                form_id=item.form,
                instance=self.instance,
                messages_mark=await surveys.message_mark(session),
                now=now,
            )
        if run_id is None:
            return None
        log.info(
            "broadcast fired",
            extra={"broadcast": item.id, "run": run_id, "trigger": trigger},
        )
        await self._expand(item, run_id, scheduled_at, now)
        return run_id

    async def run_now(self, broadcast_id: str, now: datetime | None = None) -> int:
        """A manual run, whatever the schedule (and even when paused: someone asked)."""
        item = self.get(broadcast_id)
        now = now or self.clock()
        run_id = await self.fire(item, now, "manual", now)
        assert run_id is not None  # a new time to the microsecond
        return run_id

    async def _expand(
        self, item: Broadcast, run_id: int, scheduled_at: datetime, now: datetime
    ) -> None:
        try:
            async with self.sessions() as session:
                expanded = await audiences.expand(
                    session,
                    item,
                    scheduled_at,
                    now,
                    self.tz,
                    self.services.config.wechat.robot.keys,
                )
            text_for = self._composers[item.id].for_run(
                self._context(item, scheduled_at, expanded.survey)
            )
            send_at = after_quiet_hours(max(now, scheduled_at), item.quiet_hours, self.tz)
            people = expanded.recipients
            due = delivery.pace(people, send_at, self.limiter)
            for start in range(0, len(people), delivery.CHUNK):
                rows = [
                    delivery.Row(r, None if r.note else text_for(r), due[start + i])
                    for i, r in enumerate(people[start : start + delivery.CHUNK])
                ]
                async with self.sessions.begin() as session:
                    lease = await runs.take_lease(
                        session, run_id, self.instance, self.clock(), takeover=False
                    )
                    if not lease:
                        raise LeaseLost(run_id)
                    await delivery.write_chunk(session, run_id, rows, item.format, now)
                self.services.wake_outbox()
            async with self.sessions.begin() as session:
                await runs.finish_expanding(
                    session, run_id, self.instance, len(people), self.clock()
                )
        except LeaseLost:
            log.warning("broadcast run taken over by another instance", extra={"run": run_id})
            return
        except jinja2.TemplateError as exc:
            # A broken template stays broken: record it rather than retry for ever.
            async with self.sessions.begin() as session:
                await runs.fail_run(session, run_id, f"template: {exc}", self.clock())
            log.error("broadcast run failed", extra={"run": run_id, "error": str(exc)})
            return
        self.services.wake_outbox()
        log.info(
            "broadcast queued",
            extra={"broadcast": item.id, "run": run_id, "recipients": len(people)},
        )

    async def _resume_stale(self, now: datetime, report: TickReport) -> None:
        """Finish runs whose instance died while expanding (its lease ran out)."""
        async with self.sessions() as session:
            stale = await runs.stale_runs(session, now)
        for run in stale:
            async with self.sessions.begin() as session:
                if not await runs.take_lease(session, run.id, self.instance, now, takeover=True):
                    continue  # another instance took it
                item = self.definitions.get(run.broadcast_id)
                if item is None:
                    await runs.fail_run(session, run.id, "definition removed", now)
                    continue
            log.warning("resuming broadcast run", extra={"broadcast": item.id, "run": run.id})
            await self._expand(item, run.id, run.scheduled_at, now)
            report.resumed.append(run.id)

    # ── texts ────────────────────────────────────────────────────────────────────────────

    def _context(
        self, item: Broadcast, scheduled_at: datetime, survey: surveys.SurveyStats | None = None
    ) -> dict[str, Any]:
        return delivery.template_context(
            item, scheduled_at, self.tz, self.services.config.bot.name, survey
        )

    def sample_text(self, broadcast_id: str, at: datetime, name: str = "张师傅") -> str:
        item = self.get(broadcast_id)
        composer = self._composers[item.id]
        sample = audiences.Recipient(audiences.WORK, "sample", 0, name)
        return composer.for_run(self._context(item, at))(sample)
