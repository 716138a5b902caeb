"""WeCom self-built app and WeCom intelligent robot callbacks over real HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.support import wechat

Client = TestClient[Any, Any]


async def test_work_url_verification_returns_decrypted_echostr(client: Client) -> None:
    path = wechat.verify_echostr(
        "/wechat/work", "echo-42", wechat.WORK_TOKEN, wechat.WORK_AES_KEY, wechat.WORK_CORP_ID
    )
    resp = await client.get(path)
    assert resp.status == 200
    assert await resp.text() == "echo-42"


async def test_work_url_verification_with_bad_signature_is_403(client: Client) -> None:
    path = wechat.verify_echostr(
        "/wechat/work", "echo", "wrong-token", wechat.WORK_AES_KEY, wechat.WORK_CORP_ID
    )
    assert (await client.get(path)).status == 403


async def test_work_hello_gets_encrypted_menu(client: Client) -> None:
    xml = wechat.text_xml("zhangsan", "你好", 5001, to=wechat.WORK_CORP_ID, agent=1000002)
    signed = wechat.work_encrypted("/wechat/work", xml)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    reply = wechat.decrypt_reply(
        await resp.text(), wechat.WORK_AES_KEY, wechat.WORK_CORP_ID, wechat.WORK_TOKEN
    )
    assert reply["ToUserName"] == "zhangsan"
    assert reply["AgentID"] == "1000002"
    assert "请回复数字选择服务" in reply["Content"]


async def test_work_forged_signature_is_403(client: Client) -> None:
    xml = wechat.text_xml("zhangsan", "你好", 5002, to=wechat.WORK_CORP_ID, agent=1000002)
    signed = wechat.work_encrypted("/wechat/work", xml, token="forged")
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 403


async def test_work_message_for_another_corp_is_400(client: Client) -> None:
    xml = wechat.text_xml("zhangsan", "你好", 5003, to="ww_other", agent=1000002)
    signed = wechat.work_encrypted("/wechat/work", xml, corp_id="ww_other")
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 400


def aibot_text(text: str, msgid: str, chat: str | None = "group-1") -> dict[str, Any]:
    payload: dict[str, Any] = {
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chattype": "group" if chat else "single",
        "from": {"userid": "rider01"},
        "response_url": "http://127.0.0.1:9/resp",
        "msgtype": "text",
        "text": {"content": text},
    }
    if chat:
        payload["chatid"] = chat
    return payload


async def test_aibot_mention_in_group_gets_a_stream_reply(client: Client) -> None:
    signed = wechat.aibot_encrypted("/wechat/aibot", aibot_text("@工会小助手 你好", "m-1"))
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    reply = wechat.decrypt_aibot_reply(await resp.json())
    assert reply["msgtype"] == "stream"
    assert reply["stream"]["finish"] is True
    assert "请回复数字选择服务" in reply["stream"]["content"]


async def test_aibot_full_width_mention_is_stripped_too(client: Client) -> None:
    for number, text in enumerate(
        ("＠工会小助手 菜单", "＠工会小助手　菜单", " @工会小助手 ＠小助手 菜单")
    ):
        signed = wechat.aibot_encrypted("/wechat/aibot", aibot_text(text, f"m-fw-{number}"))
        resp = await client.post(signed.path, data=signed.body)
        content = wechat.decrypt_aibot_reply(await resp.json())["stream"]["content"]
        assert "请回复数字选择服务" in content, text


async def test_aibot_private_chat_works_too(client: Client) -> None:
    signed = wechat.aibot_encrypted("/wechat/aibot", aibot_text("菜单", "m-2", chat=None))
    resp = await client.post(signed.path, data=signed.body)
    assert (
        "请回复数字选择服务" in wechat.decrypt_aibot_reply(await resp.json())["stream"]["content"]
    )


async def test_aibot_enter_chat_event_gets_text_welcome(client: Client) -> None:
    payload = {
        "msgid": "e-1",
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": "rider02"},
        "msgtype": "event",
        "event": {"eventtype": "enter_chat"},
    }
    signed = wechat.aibot_encrypted("/wechat/aibot", payload)
    resp = await client.post(signed.path, data=signed.body)
    reply = wechat.decrypt_aibot_reply(await resp.json())
    assert reply["msgtype"] == "text"
    assert "欢迎" in reply["text"]["content"]


async def test_aibot_bad_signature_and_bad_json(client: Client) -> None:
    signed = wechat.aibot_encrypted("/wechat/aibot", aibot_text("你好", "m-3"), token="forged")
    assert (await client.post(signed.path, data=signed.body)).status == 403
    good = wechat.aibot_encrypted("/wechat/aibot", aibot_text("你好", "m-4"))
    assert (await client.post(good.path, data=b"{not json")).status == 400


async def test_aibot_url_verification(client: Client) -> None:
    path = wechat.verify_echostr(
        "/wechat/aibot", "aibot-echo", wechat.AIBOT_TOKEN, wechat.AIBOT_AES_KEY, ""
    )
    resp = await client.get(path)
    assert await resp.text() == "aibot-echo"
