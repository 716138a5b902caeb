"""Helpers for the scheduled-push tests: a clock the test moves, test-only broadcast
definitions in a content folder of their own, and the app started on the fake WeChat API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.config import Config
from bot.keys import SERVICES
from bot.storage.models import Outbox, User, utcnow
from handlers.app import init_app
from scheduler.engine import BroadcastEngine
from scheduler.models import BroadcastRun
from scheduler.setup import ENGINE
from tests.conftest import PROJECT, make_config
from tests.fakes.wechat_server import APP_SEND, CORPID, FakeWeChat
from tests.support import wechat

SH = ZoneInfo("Asia/Shanghai")
Client = TestClient[Any, Any]


def sh(*parts: int) -> datetime:
    """A time in Beijing."""
    return datetime(*parts, tzinfo=SH)  # type: ignore[misc]


class Clock:
    """Reads ``set`` time plus the real time since: backoff and leases still run out."""

    def __init__(self, start: datetime) -> None:
        self.set(start)

    def set(self, when: datetime) -> None:
        self.base, self.started = when, time.monotonic()

    def __call__(self) -> datetime:
        return self.base + timedelta(seconds=time.monotonic() - self.started)


@pytest.fixture
def clock() -> Clock:
    return Clock(sh(2026, 7, 3, 6, 0))  # a Friday morning


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A content folder for test broadcasts, after the shipped one."""
    folder = tmp_path / "content"
    (folder / "broadcasts").mkdir(parents=True)
    return folder


def write_broadcasts(content: Path, toml: str, name: str = "test.toml") -> None:
    (content / "broadcasts" / name).write_text(toml, encoding="utf-8")


def broadcast_config(db_url: str, api_base: str, content: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "bot__content_dirs": [str(PROJECT / "content"), str(content)],
        "broadcasts__enabled": False,  # tests call tick() themselves unless they say so
        **overrides,
    }
    return make_config(db_url, api_base, **settings)


AppMaker = Callable[..., Awaitable[Client]]


@pytest.fixture
def start_app(aiohttp_client: Callable[..., Awaitable[Client]]) -> AppMaker:
    async def start(config: Config, clock: Callable[[], datetime]) -> Client:
        return await aiohttp_client(init_app(config, clock=clock))

    return start


def engine_of(client: Client) -> BroadcastEngine:
    return client.app[ENGINE]


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], within: float = 10.0, what: str = ""
) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


async def runs_of(client: Client, broadcast_id: str) -> list[BroadcastRun]:
    async with client.app[SERVICES].sessions() as session:
        rows = await session.execute(
            select(BroadcastRun)
            .where(BroadcastRun.broadcast_id == broadcast_id)
            .order_by(BroadcastRun.scheduled_at)
        )
        return list(rows.scalars())


async def outbox_rows(client: Client, prefix: str = "bcast:") -> list[Outbox]:
    async with client.app[SERVICES].sessions() as session:
        rows = await session.execute(
            select(Outbox).where(Outbox.dedup_key.startswith(prefix)).order_by(Outbox.id)
        )
        return list(rows.scalars())


async def settled(client: Client) -> bool:
    return all(r.status in ("sent", "failed") for r in await outbox_rows(client))


async def add_workers(
    client: Client,
    count: int,
    *,
    prefix: str = "w",
    member: bool = True,
    birthday: str | None = None,
    channel: str = "work",
    seen: datetime | None = None,
) -> list[int]:
    """Workers in the roster (WeCom members unless ``channel`` says otherwise)."""
    account = CORPID if channel == "work" else "wx_test_app"
    seen = seen or utcnow()
    async with client.app[SERVICES].sessions.begin() as session:
        users = [
            User(
                channel=channel,
                account=account,
                external_id=f"{prefix}{n:03d}",
                name=f"工友{n}",
                member_status="member" if member else "unknown",
                birthday=birthday,
                created_at=seen,
                last_seen_at=seen,
            )
            for n in range(count)
        ]
        session.add_all(users)
        await session.flush()
        return [u.id for u in users]


async def work_says(client: Client, user: str, text: str, msg_id: int) -> str:
    """A WeCom member writes to the app (encrypted callback); returns the bot's answer."""
    xml = wechat.text_xml(user, text, msg_id, to=wechat.WORK_CORP_ID, agent=1000002)
    signed = wechat.work_encrypted("/wechat/work", xml)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    reply = wechat.decrypt_reply(
        await resp.text(), wechat.WORK_AES_KEY, wechat.WORK_CORP_ID, wechat.WORK_TOKEN
    )
    return str(reply["Content"])


def recipients(fake: FakeWeChat, path: str = APP_SEND) -> list[str]:
    return [str(r.json.get("touser") or r.json.get("chatid")) for r in fake.sent(path)]
