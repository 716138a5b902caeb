"""Everything a handler may use, built once per app by the app factory (no globals)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
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
