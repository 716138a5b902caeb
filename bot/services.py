"""Everything a handler may use, built once per app by the app factory (no globals)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Config
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
    # Features (menu, knowledge base, outbox worker, forms …) hang their objects here by name.
    features: dict[str, Any] = field(default_factory=dict)
    periodic: list[Periodic] = field(default_factory=list)

    def wake_outbox(self) -> None:
        """Something was queued: the outbox worker, where this process runs one, looks now."""
        outbox = self.features.get("outbox")
        if outbox is not None:
            outbox.wake()


@asynccontextmanager
async def open_services(config: Config) -> AsyncIterator[Services]:
    """Services on the configured database for a command-line tool: no web app, no outbox
    worker; migrations applied first when the config says so."""
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
