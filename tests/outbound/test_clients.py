"""Outbound API clients against the fake WeChat server over loopback: real HTTP, no mocks."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.outbound import (
    DEFAULT_TIMEOUT,
    AccessTokenManager,
    ApiTimeout,
    GroupRobot,
    MemoryTokenStore,
    MPClient,
    TokenStore,
    TransportError,
    WeChatAPIError,
    WorkClient,
)
from tests.fakes.wechat_server import (
    AGENTID,
    APP_SECRET,
    APPID,
    CORP_SECRET,
    CORPID,
    FakeWeChat,
)

CS = "/cgi-bin/message/custom/send"
APP = "/cgi-bin/message/send"
ROBOT = "/cgi-bin/webhook/send"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def mp(
    http: aiohttp.ClientSession,
    fake: FakeWeChat,
    store: TokenStore | None = None,
    *,
    secret: str = APP_SECRET,
    timeout: float = DEFAULT_TIMEOUT,
) -> MPClient:
    return MPClient(
        http, fake.base_url, APPID, secret, store or MemoryTokenStore(), timeout=timeout
    )


def work(http: aiohttp.ClientSession, fake: FakeWeChat, secret: str = CORP_SECRET) -> WorkClient:
    return WorkClient(http, fake.base_url, CORPID, secret, AGENTID, MemoryTokenStore())


# ── the shapes that arrive ──────────────────────────────────────────────────────────────────


async def test_official_account_messages_arrive_in_the_real_shape(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = mp(http, fake_wechat)
    await client.send_text("o_worker", "您的工单 #12 已有回复")
    answer = await client.send_template(
        "o_worker",
        "TPL_CASE",
        {"first": "您好", "keyword1": {"value": "#12", "color": "#173177"}},
        url="https://example.org/case/12",
    )
    assert isinstance(answer["msgid"], int)
    text, template = fake_wechat.sent()
    assert text.json == {
        "touser": "o_worker",
        "msgtype": "text",
        "text": {"content": "您的工单 #12 已有回复"},
    }
    assert template.json == {
        "touser": "o_worker",
        "template_id": "TPL_CASE",
        "data": {"first": {"value": "您好"}, "keyword1": {"value": "#12", "color": "#173177"}},
        "url": "https://example.org/case/12",
    }


async def test_wecom_app_and_appchat_messages_arrive_in_the_real_shape(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = work(http, fake_wechat)
    answer = await client.send_text(["zhangsan", "lisi"], "新工单 #12")
    assert answer["invaliduser"] == "" and answer["msgid"]
    await client.send_markdown(["zhangsan"], "**新工单** #12")
    await client.appchat_send_text("chat-cadres", "#12 已认领")
    first, second = fake_wechat.sent(APP)
    assert first.json == {
        "touser": "zhangsan|lisi",
        "msgtype": "text",
        "agentid": AGENTID,
        "text": {"content": "新工单 #12"},
    }
    assert second.json["markdown"] == {"content": "**新工单** #12"}
    (chat,) = fake_wechat.sent("/cgi-bin/appchat/send")
    assert chat.json["chatid"] == "chat-cadres" and chat.json["text"]["content"] == "#12 已认领"
    assert fake_wechat.token_fetches == 1
    with pytest.raises(TypeError):
        await client.send_text("zhangsan", "a string is not a list of ids")


async def test_group_robot_messages_arrive_in_the_real_shape(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    robot = GroupRobot(http, fake_wechat.base_url)
    await robot.send_text("robot-group", "08:00 购药登记开始", mentioned=["@all"])
    await robot.send_text("robot-group", "无人提醒")
    await robot.send_markdown("robot-cadres", "**新工单** #12")
    await robot.send_news(
        "robot-volunteers", [{"title": "送清凉", "url": "https://example.org/cool"}]
    )
    mention, plain, card, news = fake_wechat.sent(ROBOT)
    assert mention.query == {"key": "robot-group"}
    assert mention.json == {
        "msgtype": "text",
        "text": {"content": "08:00 购药登记开始", "mentioned_list": ["@all"]},
    }
    assert plain.json == {"msgtype": "text", "text": {"content": "无人提醒"}}
    assert card.json == {"msgtype": "markdown", "markdown": {"content": "**新工单** #12"}}
    assert news.json["news"]["articles"][0]["title"] == "送清凉"
    assert fake_wechat.token_fetches == 0  # robots need no access token


# ── tokens: refreshed once, never in a loop ─────────────────────────────────────────────────


async def test_expired_token_is_refreshed_once_and_the_message_arrives_once(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = mp(http, fake_wechat)
    await client.send_text("o1", "第一条")
    fake_wechat.expire_tokens()
    await client.send_text("o1", "第二条")
    assert [s.json["text"]["content"] for s in fake_wechat.sent(CS)] == ["第一条", "第二条"]
    assert fake_wechat.calls(CS) == 3  # the second message: once refused (42001), once sent
    assert fake_wechat.token_fetches == 2


async def test_invalid_token_twice_gives_up_without_looping(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail_next(CS, 40001, times=5)
    with pytest.raises(WeChatAPIError) as err:
        await mp(http, fake_wechat).send_text("o1", "x")
    assert err.value.errcode == 40001 and err.value.permanent
    assert fake_wechat.calls(CS) == 2
    assert fake_wechat.token_fetches == 2
    assert fake_wechat.sent() == []


async def test_wecom_expired_token_is_retried_once(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = work(http, fake_wechat)
    fake_wechat.fail_next(APP, 42001)
    await client.send_text(["zhangsan"], "到了")
    assert len(fake_wechat.sent(APP)) == 1 and fake_wechat.calls(APP) == 2


@pytest.mark.parametrize(
    ("client_secret", "endpoint", "errcode"),
    [("mp", "/cgi-bin/token", 40125), ("work", "/cgi-bin/gettoken", 40001)],
)
async def test_a_wrong_secret_fails_at_the_token_and_sends_nothing(
    http: aiohttp.ClientSession,
    fake_wechat: FakeWeChat,
    client_secret: str,
    endpoint: str,
    errcode: int,
) -> None:
    with pytest.raises(WeChatAPIError) as err:
        if client_secret == "mp":
            await mp(http, fake_wechat, secret="wrong").send_text("o1", "x")
        else:
            await work(http, fake_wechat, secret="wrong").send_text(["zhangsan"], "x")
    assert err.value.errcode == errcode and err.value.permanent
    assert fake_wechat.calls(endpoint) == 1
    assert fake_wechat.sent() == []


async def test_twenty_concurrent_callers_fetch_the_token_once(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    client = mp(http, fake_wechat)
    tokens = await asyncio.gather(*(client.tokens.get() for _ in range(20)))
    assert len(set(tokens)) == 1 and fake_wechat.token_fetches == 1
    fake_wechat.expire_tokens()
    await asyncio.gather(*(client.send_text(f"o{n}", "hi") for n in range(20)))
    assert fake_wechat.token_fetches == 2
    assert len(fake_wechat.sent(CS)) == 20


async def test_a_second_client_sharing_the_store_reuses_the_token(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    store = MemoryTokenStore()
    first, second = mp(http, fake_wechat, store), mp(http, fake_wechat, store)
    await asyncio.gather(first.send_text("o1", "a"), second.send_text("o2", "b"))
    assert fake_wechat.token_fetches == 1
    await mp(http, fake_wechat).send_text("o3", "c")  # a store of its own fetches its own
    assert fake_wechat.token_fetches == 2


# ── what is temporary, what is permanent ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("errcode", "temporary"),
    [
        (-1, True),
        (45009, True),
        (45011, True),
        (45015, False),
        (45047, False),
        (43004, False),
        (40003, False),
    ],
)
async def test_api_errors_are_classified(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat, errcode: int, temporary: bool
) -> None:
    fake_wechat.fail_next(CS, errcode)
    with pytest.raises(WeChatAPIError) as err:
        await mp(http, fake_wechat).send_text("o1", "x")
    assert err.value.errcode == errcode
    assert err.value.temporary is temporary and err.value.permanent is not temporary
    assert fake_wechat.calls(CS) == 1  # no retry inside the client: the outbox decides
    assert fake_wechat.sent(CS) == []


async def test_timeout_is_temporary(http: aiohttp.ClientSession, fake_wechat: FakeWeChat) -> None:
    client = mp(http, fake_wechat, timeout=0.2)
    await client.tokens.get()
    fake_wechat.delay_next(CS, 2.0)
    with pytest.raises(ApiTimeout) as err:
        await client.send_text("o1", "slow")
    assert err.value.temporary and err.value.errcode is None


@pytest.mark.parametrize(("status", "temporary"), [(500, True), (502, True), (404, False)])
async def test_http_errors_are_classified(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat, status: int, temporary: bool
) -> None:
    fake_wechat.http_error_next(ROBOT, status)
    with pytest.raises(TransportError) as err:
        await GroupRobot(http, fake_wechat.base_url).send_text("robot-group", "x")
    assert err.value.status == status and err.value.temporary is temporary


async def test_a_refused_connection_is_temporary(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as err:
        await GroupRobot(http, f"http://127.0.0.1:{port}").send_text("robot-group", "x")
    assert err.value.temporary


async def test_a_token_fetch_that_fails_is_reported_and_nothing_is_sent(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail_next("/cgi-bin/token", -1)
    with pytest.raises(WeChatAPIError) as err:
        await mp(http, fake_wechat).send_text("o1", "x")
    assert err.value.errcode == -1 and err.value.temporary
    assert fake_wechat.calls(CS) == 0


async def test_unknown_robot_key_is_permanent(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    with pytest.raises(WeChatAPIError) as err:
        await GroupRobot(http, fake_wechat.base_url).send_markdown("nope", "x")
    assert err.value.errcode == 93000 and err.value.permanent


async def test_secrets_never_reach_logs_or_errors(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = mp(http, fake_wechat, timeout=0.2)
    token = await client.tokens.get()
    errors: list[WeChatAPIError] = []
    fake_wechat.fail_next(CS, 40001, times=2)
    fake_wechat.http_error_next(ROBOT, 502)
    for call in (
        client.send_text("o1", "x"),
        GroupRobot(http, fake_wechat.base_url).send_text("robot-cadres", "x"),
    ):
        with pytest.raises(WeChatAPIError) as err:
            await call
        errors.append(err.value)
    fake_wechat.delay_next(CS, 2.0)
    with pytest.raises(ApiTimeout) as timeout:
        await client.send_text("o1", "x")
    errors.append(timeout.value)
    shown = caplog.text + "".join(f"{e!s} {e!r}" for e in errors)
    for secret in (token, await client.tokens.get(), APP_SECRET, "robot-cadres"):
        assert secret not in shown


# ── the token manager on its own ────────────────────────────────────────────────────────────


class Fetches:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> tuple[str, int]:
        self.count += 1
        await asyncio.sleep(0)  # let concurrent callers pile up on the lock
        return f"t{self.count}", 7200


async def test_the_token_is_renewed_within_the_margin_of_expiry() -> None:
    now = [1000.0]
    fetch = Fetches()
    manager = AccessTokenManager(MemoryTokenStore(), fetch, "k", clock=lambda: now[0], margin=300)
    assert await manager.get() == "t1"
    now[0] += 7200 - 301
    assert await manager.get() == "t1"
    now[0] += 2  # 299 s left: inside the margin
    assert await manager.get() == "t2"
    assert fetch.count == 2


async def test_invalidate_keeps_a_token_another_sharer_already_renewed() -> None:
    store, fetch = MemoryTokenStore(), Fetches()
    a = AccessTokenManager(store, fetch, "k")
    b = AccessTokenManager(store, fetch, "k")
    assert await a.get() == await b.get() == "t1"
    await b.invalidate("t1")
    assert await b.get() == "t2"
    await a.invalidate("t1")  # a learns late that t1 was rejected: t2 stays
    assert await a.get() == "t2"
    assert fetch.count == 2


async def test_managers_with_their_own_locks_still_fetch_once_through_the_store() -> None:
    store, fetch = MemoryTokenStore(), Fetches()
    managers = [AccessTokenManager(store, fetch, "k") for _ in range(5)]
    tokens = await asyncio.gather(*(m.get() for m in managers for _ in range(4)))
    assert set(tokens) == {"t1"} and fetch.count == 1
