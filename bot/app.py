"""The web service around a dispatcher; ``handlers.app.init_app(config)`` wires the features into
it. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from aiohttp import ClientSession, ClientTimeout, web
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from bot import keys
from bot.channels.aibot import AIBotChannel
from bot.channels.dev import DevChannel
from bot.channels.mp import MPChannel
from bot.channels.work import WorkChannel
from bot.config import Config
from bot.dispatch import Dispatcher
from bot.logs import quiet_malformed_requests
from bot.outbound.outbox import OutboxWorker
from bot.outbound.ratelimit import build_limiter
from bot.outbound.senders import build_senders
from bot.pipeline import Pipeline
from bot.render import Renderer
from bot.services import Periodic, Services, system_clock
from bot.storage.db import create_engine, session_factory
from bot.storage.migrate import upgrade

log = logging.getLogger(__name__)


def core_services(config: Config, clock: Callable[[], datetime] = system_clock) -> Services:
    """What every feature builds on: the database, the reply templates, the clock."""
    engine = create_engine(config)
    return Services(
        config=config,
        engine=engine,
        sessions=session_factory(engine),
        render=Renderer(config.content_paths()),
        clock=clock,
    )


def create_app(services: Services, dispatcher: Dispatcher) -> web.Application:
    """The web service around a dispatcher: the channels, health checks, the database's life,
    the outbox and the periodic jobs. The features are wired by their caller (handlers.app)."""
    quiet_malformed_requests()
    config = services.config
    app = web.Application(
        client_max_size=config.server.max_body_bytes, middlewares=[error_middleware]
    )
    pipeline = Pipeline(services, dispatcher)
    app[keys.CONFIG] = config
    app[keys.ENGINE] = services.engine
    app[keys.SERVICES] = services
    app[keys.PIPELINE] = pipeline

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    setup_channels(app, config, pipeline)

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(outbound_ctx)
    app.cleanup_ctx.append(periodic_ctx)
    return app


def setup_channels(app: web.Application, config: Config, pipeline: Pipeline) -> None:
    window = config.bot.timestamp_window_seconds
    budget = config.bot.handler_budget_seconds
    max_body = config.server.max_body_bytes
    wechat = config.wechat
    if wechat.mp.enabled:
        MPChannel(wechat.mp, pipeline, window=window, budget=budget, max_body=max_body).setup(app)
    if wechat.work.enabled:
        WorkChannel(wechat.work, pipeline, window=window, budget=budget, max_body=max_body).setup(
            app
        )
    if wechat.aibot.enabled:
        AIBotChannel(wechat.aibot, pipeline, window=window, budget=budget, max_body=max_body).setup(
            app
        )
    if config.dev.enabled:
        DevChannel(config.dev, pipeline, window=window, max_body=max_body).setup(app)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = app[keys.ENGINE]
    if app[keys.CONFIG].database.migrate_on_start:
        await upgrade(engine)
    recovery = asyncio.create_task(app[keys.PIPELINE].recover())
    yield
    await asyncio.gather(recovery, return_exceptions=True)
    # Let handlers that are still running finish before the database goes away.
    await app[keys.PIPELINE].drain()
    await engine.dispose()


async def outbound_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    services = app[keys.SERVICES]
    timeout = ClientTimeout(total=config.outbox.http_timeout_seconds)
    async with ClientSession(timeout=timeout) as http:
        app[keys.HTTP] = http
        senders = build_senders(config, http, services.sessions)
        # Features add senders of their own (cases: push or park an answer for the worker).
        for install in services.sender_hooks:
            install(services, senders)
        worker = OutboxWorker(
            services.sessions,
            senders,
            config.outbox,
            services.clock,
            # WeChat's rate limits, kept in front of every send (bot/outbound/ratelimit.py).
            limiter=build_limiter(config.outbox),
        )
        app[keys.OUTBOX] = worker
        services.outbox = worker
        task = asyncio.create_task(worker.run()) if config.outbox.enabled else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def periodic_ctx(app: web.Application) -> AsyncIterator[None]:
    services = app[keys.SERVICES]

    async def loop(job: Periodic) -> None:
        while True:
            await asyncio.sleep(job.every)
            try:
                await job.run(services)
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})

    tasks = [asyncio.create_task(loop(job)) for job in services.periodic]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[keys.ENGINE].connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 2.0)
    except Exception as exc:
        log.warning("database not ready", extra={"error": type(exc).__name__})
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    return web.json_response({"status": "ok", "database": "up"})


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except (DBAPIError, OSError) as exc:
        # The database went away: say so clearly. WeChat retries a callback that failed, so
        # the message is not lost; it is handled when the database is back.
        cause = getattr(exc, "orig", None) or exc
        # An operational error says what went wrong ("database is locked", "could not
        # connect") and carries no data, nor does the statement's text (parameters are
        # placeholders); other errors may quote values, so only their type.
        operational = isinstance(exc, OperationalError)
        why = str(cause).splitlines()[0][:120] if operational else ""
        statement = str(getattr(exc, "statement", "") or "")[:80] if operational else ""
        log.error(
            "database unavailable (%s: %s) %s %s",
            type(exc).__name__,
            type(cause).__name__,
            why,
            statement,
            extra={"path": request.path, "error": type(exc).__name__},
        )
        return web.json_response(
            {"error": "service temporarily unavailable, try again"}, status=503
        )
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return web.json_response({"error": "internal error"}, status=500)
