"""Storage pieces that several instances share: the SQL token store and crash recovery."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bot.app import init_app
from bot.config import config_from_dict
from bot.keys import SERVICES
from bot.messages import Incoming, Kind
from bot.outbound import MPClient
from bot.storage.db import create_engine, session_factory
from bot.storage.message_store import MessageStore
from bot.storage.migrate import upgrade
from bot.storage.models import Message, utcnow
from bot.storage.tokens import SqlTokenStore
from tests.conftest import make_config
from tests.fakes.wechat_server import APP_SECRET, APPID, FakeWeChat


async def test_instances_share_one_token_through_the_database(
    db_url: str, fake_wechat: FakeWeChat
) -> None:
    engine = create_engine(config_from_dict({"database": {"url": db_url}}, env={}))
    store = SqlTokenStore(session_factory(engine))
    try:
        async with aiohttp.ClientSession() as http:
            a = MPClient(http, fake_wechat.base_url, APPID, APP_SECRET, store)
            b = MPClient(http, fake_wechat.base_url, APPID, APP_SECRET, store)
            await asyncio.gather(a.send_text("o1", "x"), b.send_text("o2", "y"))
            await a.send_text("o3", "z")
            assert fake_wechat.token_fetches == 1
            fake_wechat.expire_tokens()
            await b.send_text("o4", "after expiry")
            assert fake_wechat.token_fetches == 2
            assert len(fake_wechat.sent("/cgi-bin/message/custom/send")) == 4
    finally:
        await engine.dispose()


async def test_message_claimed_by_a_crashed_process_is_answered_on_start(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    # A process claimed this message, then died before answering (kill -9).
    config = make_config(db_url, api_base=fake_wechat.base_url)
    engine = create_engine(config)
    old = utcnow() - timedelta(minutes=10)
    store = MessageStore(engine, lambda: old)
    incoming = Incoming(
        channel="mp",
        account=APPID,
        user_id="o_crash",
        kind=Kind.TEXT,
        dedup_key="990001",
        text="你好",
    )
    begun = await store.begin(incoming)
    assert begun.message_id is not None
    await engine.dispose()

    client = await aiohttp_client(init_app(config))  # the restarted service
    for _ in range(100):
        sent = fake_wechat.sent("/cgi-bin/message/custom/send")
        if sent:
            break
        await asyncio.sleep(0.05)
    assert [s.json["touser"] for s in sent] == ["o_crash"]
    assert "请回复数字选择服务" in sent[0].json["text"]["content"]
    async with client.app[SERVICES].sessions() as session:
        status = (await session.execute(select(Message.status))).scalar_one()
    assert status == "deferred"


async def test_a_message_waits_out_another_process_holding_the_sqlite_file(
    tmp_path: Path,
) -> None:
    # Another process (a `unionbot` command, a backup) keeps the file locked for longer than
    # busy_timeout: the message is claimed once the lock is gone, not refused.
    url = f"sqlite+aiosqlite:///{tmp_path / 'unionbot.db'}"
    config = make_config(url)
    engine = create_engine(config)
    await upgrade(engine)
    holder = sqlite3.connect(
        tmp_path / "unionbot.db", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(5.5, holder.execute, args=("COMMIT",))
    release.start()
    store = MessageStore(engine, utcnow)
    try:
        incoming = Incoming("mp", APPID, "o_wait", Kind.TEXT, "990002", text="你好")
        begun = await store.begin(incoming)
        assert begun.message_id is not None
        async with session_factory(engine)() as session:
            stored = (await session.execute(select(Message.dedup_key))).scalars().all()
        assert stored == ["990002"]
    finally:
        release.join()
        holder.close()
        await store.close()
        await engine.dispose()
