"""Everything a handler may use, built once per app by the app factory (no globals)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.render import Renderer


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    config: Config
    sessions: async_sessionmaker[AsyncSession]
    render: Renderer
    clock: Callable[[], datetime] = system_clock
    monotonic: Callable[[], float] = time.monotonic
    # Later features (knowledge base, forms, cases) hang their objects here by name.
    features: dict[str, Any] = field(default_factory=dict)
