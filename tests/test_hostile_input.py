"""Requests that used to reach a 500 (each row of the table in issue 14), now a clear 400 or a
normal reply; the text a worker sent is kept as sent where it can be."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SERVICES
from bot.storage.models import Message
from tests.cases.test_case_loop import cadre_says
from tests.support import wechat
from tests.test_work_and_aibot import aibot_text

Client = TestClient[Any, Any]


async def _dev(client: Client, body: bytes) -> tuple[int, Any]:
    resp = await client.post("/dev/chat", data=body)
    return resp.status, await resp.json()


async def _stored_text(client: Client, dedup_key: str) -> str:
    async with client.app[SERVICES].sessions() as session:
        row = (await session.execute(select(Message).where(Message.dedup_key == dedup_key))).one()
    return str(row[0].text)


async def test_lone_surrogate_is_replaced_and_the_message_kept(client: Client) -> None:
    await _dev(client, json.dumps({"user_id": "s1", "text": "留言"}).encode())
    # A client cut an emoji in half: "\ud83d" alone is not a character.
    body = json.dumps({"user_id": "s1", "text": "路灯坏了\ud83d", "message_id": "m-\udc00"})
    status, data = await _dev(client, body.encode())
    assert status == 200
    assert "路灯坏了\ufffd" in data["replies"][0]["text"]  # the feedback was taken
    assert await _stored_text(client, "s1:m-\ufffd") == "路灯坏了\ufffd"

    status, data = await _dev(client, json.dumps({"user_id": "\udfff", "text": "你好"}).encode())
    assert status == 200 and "请回复数字选择服务" in data["replies"][0]["text"]


async def test_nul_and_controls_are_dropped_not_refused(client: Client) -> None:
    body = json.dumps({"user_id": "s2", "text": "你\u0000好\u0007", "message_id": "ctl-1"})
    status, data = await _dev(client, body.encode())
    assert status == 200 and "请回复数字选择服务" in data["replies"][0]["text"]
    assert await _stored_text(client, "s2:ctl-1") == "你好"


async def test_deeply_nested_json_is_a_bad_request(client: Client) -> None:
    for body in ("[" * 50_000 + "]" * 50_000, '{"a":' * 30_000 + "1" + "}" * 30_000):
        status, data = await _dev(client, body[:60_000].encode())
        assert status == 400 and "bad request" in data["error"]
    deep = "[" * 20_000 + "]" * 20_000
    signed = wechat.aibot_encrypted("/wechat/aibot", deep)
    assert (await client.post(signed.path, data=signed.body)).status == 400


async def test_numbers_no_float_or_integer_column_holds(client: Client) -> None:
    huge = "9" * 5000  # past int()'s 4,300 digits
    status, _ = await _dev(
        client, f'{{"user_id": "n1", "text": "1", "message_id": {huge}}}'.encode()
    )
    assert status == 400
    status, _ = await _dev(client, b'{"user_id": "n1", "text": "x", "message_id": 1e999}')
    assert status == 400
    # A WeCom MsgId of 30 digits and a CreateTime past any timestamp are ids, not numbers.
    xml = wechat.text_xml(
        "n2", "你好", 10**30, to=wechat.WORK_CORP_ID, agent=1000002, created=10**40
    )
    signed = wechat.work_encrypted("/wechat/work", xml)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    reply = wechat.decrypt_reply(
        await resp.text(), wechat.WORK_AES_KEY, wechat.WORK_CORP_ID, wechat.WORK_TOKEN
    )
    assert "请回复数字选择服务" in reply["Content"]
    # A case number of 30 digits is no case (it used to reach the database as an integer).
    answer = await cadre_says(client, "#" + "9" * 30 + " 回复 好的")
    assert "开了个小差" not in answer


def _aibot(**fields: Any) -> dict[str, Any]:
    return {**aibot_text("你好", "t-1", chat=None), **fields}


async def test_aibot_fields_of_the_wrong_type(client: Client) -> None:
    async def post(payload: dict[str, Any]) -> Any:
        signed = wechat.aibot_encrypted("/wechat/aibot", payload)
        return await client.post(signed.path, data=signed.body)

    # Text that is not an object: nothing to read, answered as a message the bot cannot read.
    for n, odd in enumerate(
        [
            {"text": "x"},
            {"event": 1.5, "msgtype": "event"},
            {"mixed": {"msg_item": "x"}, "msgtype": "mixed"},
            {"mixed": [1, 2], "msgtype": "mixed"},
            {"msgtype": ["text"]},
        ]
    ):
        resp = await post(_aibot(msgid=f"odd-{n}", **odd))
        assert resp.status == 200, odd
    # Without a sender or a message id the callback is refused.
    for n, odd in enumerate([{"from": "rider9"}, {"from": {"userid": {}}}, {"msgid": None}]):
        assert (await post(_aibot(**{"msgid": f"bad-{n}", **odd}))).status == 400, odd
    # A number where a string is expected is that number written out.
    resp = await post(_aibot(msgid=123456789012345678901234567890))
    assert resp.status == 200
    content = wechat.decrypt_aibot_reply(await resp.json())["stream"]["content"]
    assert "请回复数字选择服务" in content


async def test_ids_longer_than_the_tables_hold_are_refused(client: Client) -> None:
    status, data = await _dev(
        client, json.dumps({"user_id": "u" * 120, "chat_id": "g" * 128, "text": "你好"}).encode()
    )
    assert status == 400 and "conversation" in data["error"]
    xml = wechat.text_xml("o" * 300, "你好", 31)
    signed = wechat.mp_aes("/wechat/mp", xml)
    assert (await client.post(signed.path, data=signed.body)).status == 400
