"""Storage pieces that several instances share: the SQL token store and crash recovery."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
from sqlalchemy import event, select

from bot.config import config_from_dict
from bot.keys import SERVICES
from bot.messages import Incoming, Kind
from bot.outbound import MPClient
from bot.outbound.token_store import SqlTokenStore
from bot.storage import repo
from bot.storage.db import create_engine, session_factory
from bot.storage.message_store import MessageStore
from bot.storage.models import Message, utcnow
from handlers.app import init_app
from handlers.forms.sweeps import remind_and_expire
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


async def test_recovery_and_the_idle_form_sweep_read_indexes_not_whole_tables(
    aiohttp_client: Any, db_url: str
) -> None:
    """The message log and the conversations grow by thousands of rows a day. The two reads
    that look for a few rows among them — the unfinished messages at every start, the forms
    in progress every minute — must find them through an index, not read every row there ever
    was. The statements are the ones the code really runs, captured on their way out; the
    tables are nearly empty here, so PostgreSQL is told to avoid a sequential scan where it
    can (it would choose one for a few rows)."""
    client = await aiohttp_client(init_app(make_config(db_url)))
    services = client.app[SERVICES]
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(services.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with services.sessions() as session:
            await repo.stale_messages(session, utcnow())
        await remind_and_expire(services)
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", capture)
    by_table = {
        table: next(s for s in statements if f"FROM {table}" in s[0])
        for table in ("messages", "conversations")
    }

    async with services.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.exec_driver_sql("SET enable_seqscan = off")
        plans = {}
        for table, (statement, parameters) in by_table.items():
            explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            rows = await conn.exec_driver_sql(explain + statement, parameters)
            plans[table] = " ".join(str(value) for row in rows for value in row)
    assert "ix_messages_processing" in plans["messages"], plans["messages"]
    assert "ix_conversations_state" in plans["conversations"], plans["conversations"]
