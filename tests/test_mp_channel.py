"""The Official Account callback over real HTTP: plain, compatible and safe mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient

from tests.support import wechat

Client = TestClient[Any, Any]


async def post(client: Client, signed: wechat.Signed) -> tuple[int, str]:
    resp = await client.post(signed.path, data=signed.body)
    return resp.status, await resp.text()


async def test_url_verification_echoes_echostr(client: Client) -> None:
    signed = wechat.mp_plain("/wechat/mp", "")
    resp = await client.get(signed.path + "&echostr=hello123")
    assert resp.status == 200
    assert await resp.text() == "hello123"


async def test_url_verification_with_wrong_signature_is_refused(client: Client) -> None:
    resp = await client.get("/wechat/mp?signature=0000&timestamp=1&nonce=2&echostr=x")
    assert resp.status == 403


async def test_plain_text_hello_gets_the_menu(client: Client) -> None:
    status, body = await post(
        client, wechat.mp_plain("/wechat/mp", wechat.text_xml("o_user1", "你好", 1001))
    )
    assert status == 200
    reply = xmltodict.parse(body)["xml"]
    assert reply["ToUserName"] == "o_user1"
    assert reply["FromUserName"] == wechat.MP_APP_ID
    assert reply["MsgType"] == "text"
    assert "请回复数字选择服务" in reply["Content"]
    assert "12351" not in reply["Content"] or "1." in reply["Content"]


async def test_aes_hello_gets_an_encrypted_menu(client: Client) -> None:
    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_user2", "菜单", 1002))
    status, body = await post(client, signed)
    assert status == 200
    assert "<Encrypt>" in body and "请回复" not in body  # nothing readable on the wire
    reply = wechat.decrypt_reply(body)
    assert reply["ToUserName"] == "o_user2"
    assert "请回复数字选择服务" in reply["Content"]


async def test_envelope_in_another_layout_is_still_read(client: Client) -> None:
    # WeChat's own envelope is read without a full parse; any other well-formed layout (here
    # CDATA, indentation and the Encrypt text on lines of its own) goes through the parser.
    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_layout", "菜单", 1003))
    encrypt = xmltodict.parse(signed.body)["xml"]["Encrypt"]
    body = f"<xml>\n  <Encrypt><![CDATA[\n{encrypt}\n]]></Encrypt>\n</xml>\n".encode()
    status, text = await post(client, wechat.Signed(signed.path, body))
    assert status == 200
    assert "请回复数字选择服务" in wechat.decrypt_reply(text)["Content"]


async def test_compatible_mode_answers_encrypted(client: Client) -> None:
    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_user3", "你好", 1003), compatible=True)
    status, body = await post(client, signed)
    assert status == 200
    assert "请回复数字选择服务" in wechat.decrypt_reply(body)["Content"]


async def test_forged_signature_is_403(client: Client) -> None:
    signed = wechat.mp_plain("/wechat/mp", wechat.text_xml("o_x", "你好", 1), token="wrong")
    status, _ = await post(client, signed)
    assert status == 403


async def test_forged_msg_signature_in_safe_mode_is_403(client: Client) -> None:
    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_x", "你好", 2))
    path = signed.path.replace("msg_signature=", "msg_signature=00")
    status, _ = await post(client, wechat.Signed(path, signed.body))
    assert status == 403


async def test_stale_timestamp_is_403(client: Client) -> None:
    old = int(time.time()) - 3600
    signed = wechat.mp_plain("/wechat/mp", wechat.text_xml("o_x", "你好", 3), timestamp=old)
    status, _ = await post(client, signed)
    assert status == 403


async def test_malformed_xml_is_400(client: Client) -> None:
    status, _ = await post(client, wechat.mp_plain("/wechat/mp", "<xml><ToUserName>a</xml"))
    assert status == 400


async def test_entity_bomb_is_400(client: Client) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<xml><ToUserName>a</ToUserName><FromUserName>&lol2;</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content>"
        "<MsgId>1</MsgId></xml>"
    )
    status, _ = await post(client, wechat.mp_plain("/wechat/mp", bomb))
    assert status == 400


async def test_external_entity_is_400(client: Client) -> None:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&e;</Content><MsgId>9</MsgId></xml>"
    )
    status, body = await post(client, wechat.mp_plain("/wechat/mp", xxe))
    assert status == 400
    assert "root:" not in body


async def test_oversized_body_is_413(client: Client) -> None:
    huge = wechat.text_xml("o_x", "长" * 70000, 4)
    status, _ = await post(client, wechat.mp_plain("/wechat/mp", huge))
    assert status == 413


async def test_oversized_chunked_body_without_length_is_413(client: Client) -> None:
    signed = wechat.mp_plain("/wechat/mp", wechat.text_xml("o_x", "长" * 70000, 5))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(signed.body), 8192):
            yield signed.body[start : start + 8192]

    resp = await client.post(signed.path, data=chunks())
    assert resp.status == 413


async def test_random_garbage_is_never_5xx(client: Client) -> None:
    import random

    rng = random.Random(7)
    for n in range(60):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        if n % 3 == 0:
            junk = b"<xml>" + junk + b"</xml>"
        status, _ = await post(client, wechat.Signed(wechat.mp_plain("/wechat/mp", "").path, junk))
        assert status < 500, (status, junk)
    # and nonsense query strings
    for path in (
        "/wechat/mp",
        "/wechat/mp?signature=&timestamp=&nonce=",
        "/wechat/mp?timestamp=abc&nonce=1&signature=x",
    ):
        resp = await client.post(path, data=b"<xml/>")
        assert resp.status < 500


async def test_missing_msgtype_is_400(client: Client) -> None:
    xml = "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName></xml>"
    status, _ = await post(client, wechat.mp_plain("/wechat/mp", xml))
    assert status == 400


async def test_unknown_message_type_gets_a_polite_reply(client: Client) -> None:
    for n, kind in enumerate(("image", "voice", "location", "hologram")):
        status, body = await post(
            client, wechat.mp_plain("/wechat/mp", wechat.other_xml("o_y", kind, 2000 + n))
        )
        assert status == 200
        content = xmltodict.parse(body)["xml"]["Content"]
        assert "文字" in content, content


async def test_subscribe_gets_welcome_and_menu(client: Client) -> None:
    status, body = await post(
        client, wechat.mp_plain("/wechat/mp", wechat.event_xml("o_new", "subscribe"))
    )
    assert status == 200
    content = xmltodict.parse(body)["xml"]["Content"]
    assert "欢迎关注" in content and "请回复数字选择服务" in content


async def test_scan_subscribe_with_scene_gets_welcome(client: Client) -> None:
    xml = wechat.event_xml("o_scan", "subscribe", key="qrscene_123")
    status, body = await post(client, wechat.mp_plain("/wechat/mp", xml))
    assert status == 200
    assert "欢迎关注" in xmltodict.parse(body)["xml"]["Content"]


async def test_unsubscribe_answers_success_without_reply(client: Client) -> None:
    status, body = await post(
        client, wechat.mp_plain("/wechat/mp", wechat.event_xml("o_gone", "unsubscribe"))
    )
    assert (status, body) == (200, "success")


async def test_menu_click_shows_menu(client: Client) -> None:
    status, body = await post(
        client, wechat.mp_plain("/wechat/mp", wechat.event_xml("o_c", "CLICK", key="MENU"))
    )
    assert status == 200
    assert "请回复数字选择服务" in xmltodict.parse(body)["xml"]["Content"]


async def test_cdata_terminator_in_reply_does_not_break_xml(client: Client) -> None:
    # The feedback flow echoes the worker's words: a "]]>" in them must not end the CDATA.
    await post(client, wechat.mp_plain("/wechat/mp", wechat.text_xml("o_cd", "留言", 3001)))
    status, body = await post(
        client, wechat.mp_plain("/wechat/mp", wechat.text_xml("o_cd", "工资]]><x>没发", 3002))
    )
    assert status == 200
    assert "「工资]]><x>没发」" in xmltodict.parse(body)["xml"]["Content"]


async def test_voice_with_recognised_words_is_answered_like_text(client: Client) -> None:
    xml = (
        "<xml><ToUserName><![CDATA[wx_test_app]]></ToUserName>"
        "<FromUserName><![CDATA[o_voice]]></FromUserName><CreateTime>1357290913</CreateTime>"
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_id]]></MediaId>"
        "<Format><![CDATA[amr]]></Format><Recognition><![CDATA[菜单]]></Recognition>"
        "<MsgId>1234567890123456</MsgId></xml>"
    )
    status, body = await post(client, wechat.mp_plain("/wechat/mp", xml))
    assert status == 200
    assert "请回复数字选择服务" in xmltodict.parse(body)["xml"]["Content"]


async def test_official_sample_events_without_a_reply_answer_success(client: Client) -> None:
    for event, extra in (
        ("VIEW", "<EventKey><![CDATA[https://example.invalid/]]></EventKey>"),
        (
            "LOCATION",
            "<Latitude>23.137466</Latitude><Longitude>113.352425"
            "</Longitude><Precision>119.385040</Precision>",
        ),
        ("TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>"),
    ):
        xml = (
            "<xml><ToUserName><![CDATA[wx_test_app]]></ToUserName>"
            "<FromUserName><![CDATA[o_evt]]></FromUserName><CreateTime>123456789</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>"
        )
        status, body = await post(client, wechat.mp_plain("/wechat/mp", xml))
        assert (status, body) == (200, "success"), event
