"""Outbound API clients against the fake WeChat server over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.outbound import (
    AccessTokenManager,
    GroupRobot,
    MemoryTokenStore,
    MPClient,
    WeChatAPIError,
    WorkClient,
)
from tests.fakes.wechat_server import AGENTID, APP_SECRET, APPID, CORP_SECRET, CORPID, FakeWeChat

CS = "/cgi-bin/message/custom/send"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def mp(
    http: aiohttp.ClientSession,
    fake: FakeWeChat,
    store: MemoryTokenStore | None = None,
    timeout: float = 5.0,
) -> MPClient:
    return MPClient(
        http, fake.base_url, APPID, APP_SECRET, store or MemoryTokenStore(), timeout=timeout
    )


async def test_customer_service_text_arrives_in_the_real_shape(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    await mp(http, fake_wechat).send_text("o_worker", "您有一条工会回复")
    (sent,) = fake_wechat.sent(CS)
    assert sent.json == {
        "touser": "o_worker",
        "msgtype": "text",
        "text": {"content": "您有一条工会回复"},
    }


async def test_wecom_app_and_appchat_and_robot(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    work = WorkClient(http, fake_wechat.base_url, CORPID, CORP_SECRET, AGENTID, MemoryTokenStore())
    await work.send_markdown(["zhangsan", "lisi"], "**新工单** #12")
    await work.appchat_send_text("chat-1", "你好")
    await GroupRobot(http, fake_wechat.base_url).send_text("robot-cadres", "卡片", ["@all"])
    (app_msg,) = fake_wechat.sent("/cgi-bin/message/send")
    assert app_msg.json["touser"] == "zhangsan|lisi"
    assert app_msg.json["agentid"] == AGENTID and app_msg.json["msgtype"] == "markdown"
    assert fake_wechat.sent("/cgi-bin/appchat/send")[0].json["chatid"] == "chat-1"
    robot = fake_wechat.sent("/cgi-bin/webhook/send")[0]
    assert robot.json["text"]["mentioned_list"] == ["@all"]


async def test_expired_token_is_refreshed_once_and_the_message_arrives_once(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = mp(http, fake_wechat)
    await client.send_text("o1", "第一条")
    fake_wechat.expire_tokens()
    await client.send_text("o1", "第二条")
    assert [s.json["text"]["content"] for s in fake_wechat.sent(CS)] == ["第一条", "第二条"]
    assert fake_wechat.token_fetches == 2


async def test_invalid_token_twice_gives_up_without_looping(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail_next(CS, 40001, times=5)
    with pytest.raises(WeChatAPIError) as err:
        await mp(http, fake_wechat).send_text("o1", "x")
    assert err.value.errcode == 40001
    assert fake_wechat.calls(CS) == 2
    assert fake_wechat.token_fetches == 2


@pytest.mark.parametrize(
    ("errcode", "temporary"),
    [(-1, True), (45009, True), (45015, False), (45047, False), (43004, False)],
)
async def test_error_classification(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat, errcode: int, temporary: bool
) -> None:
    fake_wechat.fail_next(CS, errcode)
    with pytest.raises(WeChatAPIError) as err:
        await mp(http, fake_wechat).send_text("o1", "x")
    assert err.value.errcode == errcode
    assert err.value.temporary is temporary
    assert fake_wechat.sent(CS) == []


async def test_timeout_and_bad_gateway_are_temporary(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = mp(http, fake_wechat, timeout=0.2)
    await client.send_text("o1", "warm")  # fetch the token first
    fake_wechat.delay_next(CS, 1.0)
    with pytest.raises(WeChatAPIError) as err:
        await client.send_text("o1", "slow")
    assert err.value.temporary
    fake_wechat.http_error_next(CS, 502)
    with pytest.raises(WeChatAPIError) as err:
        await client.send_text("o1", "502")
    assert err.value.temporary


async def test_twenty_concurrent_callers_fetch_the_token_once(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = mp(http, fake_wechat)
    await asyncio.gather(*(client.send_text(f"o{n}", "hi") for n in range(20)))
    assert fake_wechat.token_fetches == 1
    assert len(fake_wechat.sent(CS)) == 20


async def test_second_manager_sharing_the_store_reuses_the_token(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    store = MemoryTokenStore()
    await mp(http, fake_wechat, store).send_text("o1", "a")
    await mp(http, fake_wechat, store).send_text("o2", "b")
    assert fake_wechat.token_fetches == 1


async def test_token_manager_refreshes_near_expiry() -> None:
    now = [1000.0]
    fetched: list[int] = []

    async def fetch() -> tuple[str, int]:
        fetched.append(1)
        return f"t{len(fetched)}", 7200

    manager = AccessTokenManager(MemoryTokenStore(), fetch, "k", clock=lambda: now[0])
    assert await manager.get() == "t1"
    now[0] += 7200 - 301
    assert await manager.get() == "t1"
    now[0] += 2
    assert await manager.get() == "t2"


async def test_unknown_robot_key_is_permanent(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    with pytest.raises(WeChatAPIError) as err:
        await GroupRobot(http, fake_wechat.base_url).send_markdown("nope", "x")
    assert err.value.errcode == 93000 and err.value.permanent
