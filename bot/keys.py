"""Typed keys for what the app factory stores on the ``web.Application``."""

from __future__ import annotations

from aiohttp import ClientSession, web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Config
from bot.outbound.outbox import OutboxWorker
from bot.pipeline import Pipeline
from bot.services import Services

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
SERVICES = web.AppKey("services", Services)
PIPELINE = web.AppKey("pipeline", Pipeline)
HTTP = web.AppKey("http", ClientSession)
OUTBOX = web.AppKey("outbox", OutboxWorker)
