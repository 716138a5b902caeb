"""Wiring scheduled pushes into the app: the engine always (the CLI and tests use it), the
APScheduler jobs only where ``broadcasts.enabled`` (one or more instances may run them: the
database keeps every firing to one run)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot import keys
from bot.outbound.outbox import Sender
from bot.services import Services
from scheduler.definitions import load_definitions
from scheduler.engine import BroadcastEngine
from scheduler.jobs import BroadcastScheduler
from scheduler.senders import install_senders

FEATURE = "broadcasts"
ENGINE = web.AppKey("broadcasts", BroadcastEngine)
SCHEDULER = web.AppKey("broadcast_scheduler", BroadcastScheduler)


def build_engine(services: Services) -> BroadcastEngine:
    return BroadcastEngine(services, load_definitions(services.config.content_paths()))


def setup_broadcasts(app: web.Application, services: Services) -> BroadcastEngine:
    engine = build_engine(services)
    app[ENGINE] = engine

    def senders_hook(services: Services, senders: dict[str, Sender]) -> None:
        install_senders(app[keys.HTTP], services, senders)

    services.sender_hooks.append(senders_hook)
    if services.config.broadcasts.enabled:
        app.cleanup_ctx.append(scheduler_ctx)
    return engine


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = BroadcastScheduler(app[ENGINE])
    app[SCHEDULER] = scheduler
    # The first check runs at once, in the background: catching up a missed run must not
    # hold the service's start (WeChat waits 5 s for a callback answer).
    await scheduler.start()
    yield
    await scheduler.stop()
