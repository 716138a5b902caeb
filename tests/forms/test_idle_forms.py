"""A form left alone: a reminder after forms.reminder_minutes, dropped after
forms.expire_minutes — driven from the database, so a restart does not lose them."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot import keys
from bot.storage.models import AuditLog, Conversation
from handlers.app import init_app
from handlers.forms.sweeps import remind_and_expire
from tests.conftest import make_config
from tests.fakes.wechat_server import FakeWeChat, Recorded
from tests.forms.chat import CUSTOM_SEND, Client, Clock, mp_say, say, wait_sent


def to(user: str) -> Any:
    return lambda r: r.json.get("touser") == user


def text_of(r: Recorded) -> str:
    return str(r.json["text"]["content"])


async def test_reminder_once_then_expiry_after_a_restart(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    config = make_config(db_url, api_base=fake_wechat.base_url)
    clock = Clock()
    client: Client = await aiohttp_client(init_app(config, clock=clock))
    services = client.app[keys.SERVICES]
    await mp_say(client, "我要买药", user="o_idle")
    await mp_say(client, "张三", user="o_idle")

    clock.advance(minutes=20)  # less than reminder_minutes (30)
    await remind_and_expire(services)
    clock.advance(minutes=15)
    await remind_and_expire(services)
    reminders = await wait_sent(fake_wechat, CUSTOM_SEND, to("o_idle"))
    assert len(reminders) == 1
    assert "购药登记还没填完" in text_of(reminders[0]) and "您住哪里" in text_of(reminders[0])
    clock.advance(minutes=5)
    await remind_and_expire(services)  # reminded already: nothing more
    await asyncio.sleep(0.3)
    assert len(fake_wechat.sent(CUSTOM_SEND)) == 1
    await client.close()

    # A new instance on the same database, long after: the form expires and the worker is
    # told; the reminder did not count as activity.
    clock.advance(minutes=240 - 40 + 1)
    later: Client = await aiohttp_client(init_app(config, clock=clock))
    await remind_and_expire(later.app[keys.SERVICES])
    sent = await wait_sent(fake_wechat, CUSTOM_SEND, to("o_idle"), count=2)
    assert "很久没有填写，已自动取消" in text_of(sent[1]) and "我要买药" in text_of(sent[1])
    assert "要买什么药" not in await mp_say(later, "3号楼2单元501", user="o_idle")


async def test_an_answer_after_the_reminder_carries_on_and_can_be_reminded_again(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    clock = Clock()
    config = make_config(db_url, api_base=fake_wechat.base_url)
    client: Client = await aiohttp_client(init_app(config, clock=clock))
    services = client.app[keys.SERVICES]
    await mp_say(client, "我要入会", user="o_slow")
    clock.advance(minutes=31)
    await remind_and_expire(services)
    assert len(await wait_sent(fake_wechat, CUSTOM_SEND, to("o_slow"))) == 1
    # The worker answers: the pause starts again, and so does the reminder.
    assert "手机号" in await mp_say(client, "李四", user="o_slow")
    clock.advance(minutes=31)
    await remind_and_expire(services)
    second = await wait_sent(fake_wechat, CUSTOM_SEND, to("o_slow"), count=2)
    assert len(second) == 2 and "手机号" in text_of(second[1])


async def test_dev_chat_form_expires_silently_and_is_recorded(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    clock = Clock()
    config = make_config(db_url, api_base=fake_wechat.base_url)
    client: Client = await aiohttp_client(init_app(config, clock=clock))
    services = client.app[keys.SERVICES]
    await say(client, "服务申请", user="dev-idle")
    clock.advance(minutes=31)
    await remind_and_expire(services)
    async with services.sessions() as session:
        row = (await session.execute(select(Conversation))).scalar_one()
    assert row.state == "form:service" and row.data["reminded"] is True
    clock.advance(minutes=240)
    await remind_and_expire(services)
    async with services.sessions() as session:
        row = (await session.execute(select(Conversation))).scalar_one()
        audit = (await session.execute(select(AuditLog))).scalars().all()
    assert row.state is None and row.data == {}
    assert [(a.action, a.subject, a.detail["pushed"]) for a in audit] == [
        ("form_expired", "service", False)
    ]
    await asyncio.sleep(0.2)
    assert fake_wechat.sent(CUSTOM_SEND) == []
    assert "请回复序号" not in await say(client, "维修", user="dev-idle")
