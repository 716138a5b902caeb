"""Everything a handler may use, built once per app by the app factory (no globals)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Config
from bot.outbound.outbox import OutboxWorker, Sender
from bot.render import Renderer


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Periodic:
    """A job the app runs every ``every`` seconds (reminders, sweeps, overdue checks). It reads
    what is due from the database, so nothing is lost across a restart."""

    name: str
    every: float
    run: Callable[[Services], Awaitable[object]]


@dataclass
class Services:
    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    render: Renderer
    clock: Callable[[], datetime] = system_clock
    monotonic: Callable[[], float] = time.monotonic
    periodic: list[Periodic] = field(default_factory=list)
    # Features add senders of their own to the outbox (cases: push or park a cadre's answer).
    sender_hooks: list[SenderHook] = field(default_factory=list)
    # The outbox worker, where this process runs one (set when the web app starts).
    outbox: OutboxWorker | None = None

    def wake_outbox(self) -> None:
        """Something was queued: the outbox worker, where this process runs one, looks now."""
        if self.outbox is not None:
            self.outbox.wake()


SenderHook = Callable[[Services, dict[str, Sender]], None]


@asynccontextmanager
async def open_core_services(config: Config) -> AsyncIterator[Services]:
    """The core's services alone, for a command of a feature that needs nothing more (the
    broadcasts): no web app, no outbox worker, no knowledge base to build; migrations applied
    first when the config says so. Commands that need the features use
    ``handlers.app.open_services``."""
    from bot.storage.db import create_engine, session_factory
    from bot.storage.migrate import upgrade

    engine = create_engine(config)
    try:
        if config.database.migrate_on_start:
            await upgrade(engine)
        yield Services(
            config=config,
            engine=engine,
            sessions=session_factory(engine),
            render=Renderer(config.content_paths()),
        )
    finally:
        await engine.dispose()
