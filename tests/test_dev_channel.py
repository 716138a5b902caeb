"""The dev chat: the same dispatcher as WeChat, JSON in and out."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from bot.channels.dev import sign
from handlers.app import init_app
from tests.conftest import make_config

Client = TestClient[Any, Any]


async def test_hello_returns_the_menu(client: Client) -> None:
    resp = await client.post("/dev/chat", json={"user_id": "u1", "text": "你好", "chat_id": None})
    assert resp.status == 200
    data = await resp.json()
    assert data["replies"][0]["type"] == "text"
    assert "请回复数字选择服务" in data["replies"][0]["text"]


async def test_menu_number_picks_the_service(client: Client) -> None:
    menu = await (await client.post("/dev/chat", json={"user_id": "u1", "text": "菜单"})).json()
    line = next(x for x in menu["replies"][0]["text"].splitlines() if "联系工会" in x)
    number = line.split(".")[0]
    resp = await client.post("/dev/chat", json={"user_id": "u1", "text": number})
    assert "12351" in (await resp.json())["replies"][0]["text"]


async def test_cancel_leaves_a_flow(client: Client) -> None:
    await client.post("/dev/chat", json={"user_id": "u2", "text": "留言"})
    resp = await client.post("/dev/chat", json={"user_id": "u2", "text": "取消"})
    assert "已取消" in (await resp.json())["replies"][0]["text"]
    resp = await client.post("/dev/chat", json={"user_id": "u2", "text": "今天天气"})
    assert "收到您的留言" not in (await resp.json())["replies"][0]["text"]


async def test_unknown_text_gets_a_helpful_answer(client: Client) -> None:
    resp = await client.post("/dev/chat", json={"user_id": "u3", "text": "qwertyuiop"})
    text = (await resp.json())["replies"][0]["text"]
    assert "菜单" in text and "人工" in text


async def test_groups_keep_separate_state_per_user(client: Client) -> None:
    await client.post("/dev/chat", json={"user_id": "a", "text": "留言", "chat_id": "g1"})
    resp = await client.post(
        "/dev/chat", json={"user_id": "b", "text": "路灯坏了", "chat_id": "g1"}
    )
    assert "收到您的留言" not in (await resp.json())["replies"][0]["text"]
    resp = await client.post(
        "/dev/chat", json={"user_id": "a", "text": "路灯坏了", "chat_id": "g1"}
    )
    assert "收到您的留言" in (await resp.json())["replies"][0]["text"]


async def test_bad_json_is_400_with_a_reason(client: Client) -> None:
    for body in (
        b"not json",
        b"[]",
        json.dumps({"user_id": "", "text": "x"}).encode(),
        json.dumps({"user_id": "u", "text": 5}).encode(),
    ):
        resp = await client.post("/dev/chat", data=body)
        assert resp.status == 400
        assert "error" in await resp.json()


async def test_signed_dev_channel_refuses_unsigned_requests(
    aiohttp_client: Any, db_url: str
) -> None:
    client = await aiohttp_client(init_app(make_config(db_url, dev__secret="s3cret")))
    body = json.dumps({"user_id": "u", "text": "你好"}).encode()
    resp = await client.post("/dev/chat", data=body)
    assert resp.status == 403
    ts = str(int(time.time()))
    resp = await client.post(
        "/dev/chat",
        data=body,
        headers={"X-Unionbot-Timestamp": ts, "X-Unionbot-Signature": sign("s3cret", ts, body)},
    )
    assert resp.status == 200


async def test_dev_chat_is_off_unless_configured(aiohttp_client: Any, db_url: str) -> None:
    client = await aiohttp_client(init_app(make_config(db_url, dev__enabled=False)))
    resp = await client.post("/dev/chat", json={"user_id": "u", "text": "你好"})
    assert resp.status == 404


async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "up"
