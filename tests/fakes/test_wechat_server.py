"""The fake WeChat API itself: real shapes, injected faults, token expiry, standalone mode."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes import wechat_server
from tests.fakes.wechat_server import (
    AGENTID,
    APP_SECRET,
    APPID,
    CORP_SECRET,
    CORPID,
    FakeWeChat,
)

CS = "/cgi-bin/message/custom/send"
ROBOT = "/cgi-bin/webhook/send"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str, **params: str) -> dict[str, Any]:
    async with http.get(url, params=params) as resp:
        data: dict[str, Any] = await resp.json()
        return data


async def post(http: aiohttp.ClientSession, url: str, body: Any, **params: str) -> tuple[int, Any]:
    """(HTTP status, decoded JSON answer, or the text when it is not JSON)."""
    async with http.post(url, params=params, json=body) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


async def mp_token(http: aiohttp.ClientSession, fake: FakeWeChat) -> str:
    data = await get(
        http,
        f"{fake.base_url}/cgi-bin/token",
        grant_type="client_credential",
        appid=APPID,
        secret=APP_SECRET,
    )
    return str(data["access_token"])


def text(to: str = "o1", content: str = "你好") -> dict[str, Any]:
    return {"touser": to, "msgtype": "text", "text": {"content": content}}


async def test_token_endpoints_answer_like_wechat(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    base = fake_wechat.base_url
    mp = await get(
        http,
        f"{base}/cgi-bin/token",
        grant_type="client_credential",
        appid=APPID,
        secret=APP_SECRET,
    )
    assert set(mp) == {"access_token", "expires_in"} and mp["expires_in"] == 7200
    wrong = await get(
        http, f"{base}/cgi-bin/token", grant_type="client_credential", appid=APPID, secret="x"
    )
    assert wrong == {"errcode": 40125, "errmsg": "invalid appsecret"}

    work = await get(http, f"{base}/cgi-bin/gettoken", corpid=CORPID, corpsecret=CORP_SECRET)
    assert work["errcode"] == 0 and work["errmsg"] == "ok" and work["expires_in"] > 7000
    again = await get(http, f"{base}/cgi-bin/gettoken", corpid=CORPID, corpsecret=CORP_SECRET)
    assert again["access_token"] == work["access_token"]  # WeCom repeats a valid token
    bad = await get(http, f"{base}/cgi-bin/gettoken", corpid=CORPID, corpsecret="x")
    assert bad["errcode"] == 40001
    assert fake_wechat.token_fetches == 3
    assert fake_wechat.calls("/cgi-bin/token") == 2


async def test_every_endpoint_accepts_its_real_shape_and_records_it(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    base = fake_wechat.base_url
    token = await mp_token(http, fake_wechat)
    assert await post(http, base + CS, text(), access_token=token) == (
        200,
        {"errcode": 0, "errmsg": "ok"},
    )
    template = {"touser": "o1", "template_id": "T1", "data": {"first": {"value": "您好"}}}
    _, answer = await post(
        http, f"{base}/cgi-bin/message/template/send", template, access_token=token
    )
    assert answer["errcode"] == 0 and isinstance(answer["msgid"], int)

    work = await get(http, f"{base}/cgi-bin/gettoken", corpid=CORPID, corpsecret=CORP_SECRET)
    app_msg = {**text("zhangsan|lisi"), "agentid": AGENTID}
    _, answer = await post(
        http, f"{base}/cgi-bin/message/send", app_msg, access_token=work["access_token"]
    )
    assert answer["errcode"] == 0 and answer["invaliduser"] == "" and answer["msgid"]
    chat = {"chatid": "c1", "msgtype": "markdown", "markdown": {"content": "**新工单**"}}
    _, answer = await post(
        http, f"{base}/cgi-bin/appchat/send", chat, access_token=work["access_token"]
    )
    assert answer == {"errcode": 0, "errmsg": "ok"}

    robot = {"msgtype": "text", "text": {"content": "开会", "mentioned_list": ["@all"]}}
    assert await post(http, base + ROBOT, robot, key="robot-cadres") == (
        200,
        {"errcode": 0, "errmsg": "ok"},
    )

    assert [r.path for r in fake_wechat.sent()] == [
        CS,
        "/cgi-bin/message/template/send",
        "/cgi-bin/message/send",
        "/cgi-bin/appchat/send",
        ROBOT,
    ]
    (recorded,) = fake_wechat.sent(ROBOT)
    assert recorded.json == robot and recorded.query == {"key": "robot-cadres"}
    assert abs(recorded.at - time.time()) < 5


async def test_tokens_are_checked_per_family_and_can_be_expired(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    base = fake_wechat.base_url
    token = await mp_token(http, fake_wechat)
    assert (await post(http, base + CS, text()))[1]["errcode"] == 40001
    assert (await post(http, base + CS, text(), access_token="nope"))[1]["errcode"] == 40001
    app_msg = {**text("zhangsan"), "agentid": AGENTID}
    _, answer = await post(http, f"{base}/cgi-bin/message/send", app_msg, access_token=token)
    assert answer["errcode"] == 40001  # an MP token on WeCom

    fake_wechat.expire_tokens()
    _, answer = await post(http, base + CS, text(), access_token=token)
    assert answer == {"errcode": 42001, "errmsg": "access_token expired"}
    fresh = await mp_token(http, fake_wechat)
    assert fresh != token
    assert (await post(http, base + CS, text(), access_token=fresh))[1] == {
        "errcode": 0,
        "errmsg": "ok",
    }
    assert fake_wechat.calls(CS) == 4 and len(fake_wechat.sent(CS)) == 1


async def test_a_superseded_official_account_token_lives_a_grace_period(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = fake_wechat.base_url
    first = await mp_token(http, fake_wechat)
    second = await mp_token(http, fake_wechat)
    assert (await post(http, base + CS, text(), access_token=first))[1]["errcode"] == 0
    monkeypatch.setattr(wechat_server, "SUPERSEDED_GRACE", 0.0)
    await mp_token(http, fake_wechat)  # supersedes the second one at once
    _, answer = await post(http, base + CS, text(), access_token=second)
    assert answer["errcode"] == 40001 and "not latest" in answer["errmsg"]


async def test_injected_faults_come_in_order_and_are_counted(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    base = fake_wechat.base_url
    token = await mp_token(http, fake_wechat)
    fake_wechat.fail_next(CS, 45009, times=2)
    fake_wechat.http_error_next(CS, 502)
    status, answer = await post(http, base + CS, text(), access_token=token)
    assert status == 502 and isinstance(answer, str) and "502" in answer
    for _ in range(2):
        _, answer = await post(http, base + CS, text(), access_token=token)
        assert answer == {"errcode": 45009, "errmsg": "api freq out of limit"}
    assert (await post(http, base + CS, text(), access_token=token))[1]["errcode"] == 0
    assert fake_wechat.calls(CS) == 4 and len(fake_wechat.sent(CS)) == 1

    fake_wechat.fail_next("cgi-bin/token", -1)  # the leading slash is optional
    assert (await get(http, f"{base}/cgi-bin/token"))["errcode"] == -1


async def test_a_delayed_call_is_still_delivered(
    http: aiohttp.ClientSession, fake_wechat: FakeWeChat
) -> None:
    token = await mp_token(http, fake_wechat)
    fake_wechat.delay_next(CS, 0.3)
    started = time.monotonic()
    _, answer = await post(http, fake_wechat.base_url + CS, text(), access_token=token)
    assert time.monotonic() - started >= 0.3
    assert answer == {"errcode": 0, "errmsg": "ok"}


async def test_close_cuts_a_pending_delay_short(http: aiohttp.ClientSession) -> None:
    fake = FakeWeChat()
    await fake.start()
    fake.delay_next(ROBOT, 30)
    call = asyncio.create_task(post(http, fake.base_url + ROBOT, {}, key="robot-cadres"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await fake.close()
    assert time.monotonic() - started < 5
    await asyncio.gather(call, return_exceptions=True)


async def test_robot_keys_content_and_rate_limit(http: aiohttp.ClientSession) -> None:
    fake = FakeWeChat(robot_keys=["k1", "k2"], robot_rate=(3, 60.0))
    await fake.start()
    try:
        url = fake.base_url + ROBOT
        md = {"msgtype": "markdown", "markdown": {"content": "**通知**"}}
        assert (await post(http, url, md, key="nope"))[1] == {
            "errcode": 93000,
            "errmsg": "invalid webhook url",
        }
        empty = {"msgtype": "text", "text": {"content": ""}}
        assert (await post(http, url, empty, key="k1"))[1]["errcode"] == 44004
        answers = [(await post(http, url, md, key="k1"))[1] for _ in range(4)]
        assert [a["errcode"] for a in answers] == [0, 0, 0, 45009]
        assert (await post(http, url, md, key="k2"))[1]["errcode"] == 0
        assert fake.calls(ROBOT) == 7 and len(fake.sent(ROBOT)) == 4
    finally:
        await fake.close()


async def test_wecom_reports_unknown_members(http: aiohttp.ClientSession) -> None:
    fake = FakeWeChat(work_users=["zhangsan"])
    await fake.start()
    try:
        work = await get(
            http, f"{fake.base_url}/cgi-bin/gettoken", corpid=CORPID, corpsecret=CORP_SECRET
        )
        url, token = f"{fake.base_url}/cgi-bin/message/send", work["access_token"]
        _, answer = await post(
            http, url, {**text("zhangsan|ghost"), "agentid": AGENTID}, access_token=token
        )
        assert answer["invaliduser"] == "ghost"
        _, answer = await post(http, url, {**text("ghost"), "agentid": AGENTID}, access_token=token)
        assert answer["errcode"] == 81013
        _, answer = await post(http, url, {**text("zhangsan"), "agentid": 1}, access_token=token)
        assert answer["errcode"] == 40056
    finally:
        await fake.close()


async def test_standalone_server_prints_what_it_receives(http: aiohttp.ClientSession) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.wechat_server",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        base = banner.rsplit(" ", 1)[-1].strip()
        assert base.startswith("http://127.0.0.1:")
        robot = {"msgtype": "text", "text": {"content": "夜校周三开课"}}
        assert (await post(http, base + ROBOT, robot, key="robot-group"))[1]["errcode"] == 0
        async with http.get(f"{base}/_fake/stats") as resp:
            stats = await resp.json()
        assert stats["accepted"] == {ROBOT: 1} and stats["calls"] == {ROBOT: 1}
        async with http.post(f"{base}/_fake/fault", json={"path": ROBOT, "errcode": 45009}) as resp:
            assert resp.status == 200
        assert (await post(http, base + ROBOT, robot, key="robot-group"))[1]["errcode"] == 45009
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    printed = out.decode()
    assert "夜校周三开课" in printed and ROBOT in printed
    assert "accepted:" in printed
    assert json.dumps(robot, ensure_ascii=False) in printed
