"""Shared fixtures: a real database (SQLite file and PostgreSQL server), a config pointing at
the fake WeChat API, and the app served over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import Config, config_from_dict
from bot.storage.migrate import upgrade
from handlers.app import init_app
from tests.support import wechat

pytest_plugins = ["tests.fakes.fixtures"]

PG_URL = os.environ.get(
    "UNIONBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
PROJECT = Path(__file__).resolve().parent.parent


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _migrate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of its own on the PostgreSQL server, migrated once for the session."""
    name = f"unionbot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def create() -> None:
        try:
            conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({exc}); run `make postgres`")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(drop())


async def _truncate(url: str) -> None:
    """Empty every table the migrations made (whatever module its model lives in)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = (
                (
                    await conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "AND tablename <> 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            tables = ", ".join(f'"{n}"' for n in names)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test that takes this runs twice: on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'unionbot.db'}"
        asyncio.run(_migrate(url))
        return url
    url = str(request.getfixturevalue("pg_url"))
    asyncio.run(_truncate(url))
    return url


def make_config(db_url: str, api_base: str = "http://127.0.0.1:9", **overrides: Any) -> Config:
    """A config with every channel on, secrets from tests.support.wechat, and the outbound
    API pointed at ``api_base`` (the fake WeChat server)."""
    raw: dict[str, Any] = {
        "database": {"url": db_url},
        "bot": {"content_dirs": [str(PROJECT / "content")]},
        "log": {"level": "WARNING", "format": "text"},
        "dev": {"enabled": True},
        "wechat": {
            "mp": {
                "enabled": True,
                "app_id": wechat.MP_APP_ID,
                "app_secret": "mp_secret",
                "token": wechat.MP_TOKEN,
                "encoding_aes_key": wechat.MP_AES_KEY,
                "api_base": api_base,
            },
            "work": {
                "enabled": True,
                "corp_id": wechat.WORK_CORP_ID,
                "agent_id": 1000002,
                "secret": "work_secret",
                "token": wechat.WORK_TOKEN,
                "encoding_aes_key": wechat.WORK_AES_KEY,
                "api_base": api_base,
            },
            "aibot": {
                "enabled": True,
                "token": wechat.AIBOT_TOKEN,
                "encoding_aes_key": wechat.AIBOT_AES_KEY,
            },
            "robot": {
                "api_base": api_base,
                "keys": {
                    "cadres": "robot-cadres",
                    "volunteers": "robot-volunteers",
                    "group": "robot-group",
                },
            },
        },
        "outbox": {"poll_seconds": 0.05, "backoff_seconds": 0.05},
    }
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_dict(raw, base_dir=PROJECT, env={})


AppFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], db_url: str
) -> AsyncIterator[AppFactory]:
    """Start the app on loopback over real HTTP; call again for a 'restarted' app."""

    async def factory(config: Config | None = None, **kwargs: Any) -> TestClient[Any, Any]:
        return await aiohttp_client(init_app(config or make_config(db_url), **kwargs))

    yield factory


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient[Any, Any]:
    return await make_client()
