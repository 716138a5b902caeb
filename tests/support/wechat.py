"""Build the callbacks WeChat and WeCom really send: signed, and encrypted where they are."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import xmltodict
from wechatpy.crypto import PrpCrypto

from bot.channels.common import wechat_signature

MP_TOKEN = "mp_token"
MP_APP_ID = "wx_test_app"
MP_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WORK_TOKEN = "work_token"
WORK_CORP_ID = "ww_test_corp"
WORK_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AIBOT_TOKEN = "aibot_token"
AIBOT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def text_xml(
    user: str,
    content: str,
    msg_id: int,
    to: str = MP_APP_ID,
    created: int | None = None,
    agent: int | None = None,
) -> str:
    fields: dict[str, Any] = {
        "ToUserName": to,
        "FromUserName": user,
        "CreateTime": created or int(time.time()),
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id,
    }
    if agent is not None:
        fields["AgentID"] = agent
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


def event_xml(
    user: str, event: str, key: str = "", to: str = MP_APP_ID, created: int | None = None
) -> str:
    fields = {
        "ToUserName": to,
        "FromUserName": user,
        "CreateTime": created or int(time.time()),
        "MsgType": "event",
        "Event": event,
        "EventKey": key,
    }
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


def other_xml(user: str, msg_type: str, msg_id: int, to: str = MP_APP_ID) -> str:
    fields = {
        "ToUserName": to,
        "FromUserName": user,
        "CreateTime": int(time.time()),
        "MsgType": msg_type,
        "MediaId": "media",
        "PicUrl": "http://example.invalid/p.jpg",
        "MsgId": msg_id,
    }
    return str(xmltodict.unparse({"xml": fields}, full_document=False))


@dataclass(frozen=True)
class Signed:
    path: str  # with query string
    body: bytes


def _cipher(aes_key: str) -> PrpCrypto:
    return PrpCrypto(base64.b64decode(aes_key + "="))


def mp_plain(path: str, xml: str, token: str = MP_TOKEN, timestamp: int | None = None) -> Signed:
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    query = {
        "signature": wechat_signature(token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "openid": "o",
    }
    return Signed(f"{path}?{urlencode(query)}", xml.encode())


def mp_aes(
    path: str,
    xml: str,
    token: str = MP_TOKEN,
    aes_key: str = MP_AES_KEY,
    app_id: str = MP_APP_ID,
    timestamp: int | None = None,
    compatible: bool = False,
) -> Signed:
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    encrypt = _cipher(aes_key).encrypt(xml, app_id).decode()
    inner = xmltodict.parse(xml)["xml"] if compatible else {}
    body = str(xmltodict.unparse({"xml": {**inner, "ToUserName": app_id, "Encrypt": encrypt}}))
    query = {
        "signature": wechat_signature(token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "openid": "o",
        "encrypt_type": "aes",
        "msg_signature": wechat_signature(token, ts, nonce, encrypt),
    }
    return Signed(f"{path}?{urlencode(query)}", body.encode())


def work_encrypted(
    path: str,
    xml: str,
    token: str = WORK_TOKEN,
    aes_key: str = WORK_AES_KEY,
    corp_id: str = WORK_CORP_ID,
    agent: int = 1000002,
) -> Signed:
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    encrypt = _cipher(aes_key).encrypt(xml, corp_id).decode()
    body = xmltodict.unparse({"xml": {"ToUserName": corp_id, "AgentID": agent, "Encrypt": encrypt}})
    query = {
        "msg_signature": wechat_signature(token, ts, nonce, encrypt),
        "timestamp": ts,
        "nonce": nonce,
    }
    return Signed(f"{path}?{urlencode(query)}", str(body).encode())


def aibot_encrypted(
    path: str,
    payload: dict[str, Any] | str,
    token: str = AIBOT_TOKEN,
    aes_key: str = AIBOT_AES_KEY,
) -> Signed:
    """``payload`` is the callback's JSON: a dict, or the JSON text itself (as sent)."""
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    encrypt = _cipher(aes_key).encrypt(text, "").decode()
    query = {
        "msg_signature": wechat_signature(token, ts, nonce, encrypt),
        "timestamp": ts,
        "nonce": nonce,
    }
    return Signed(f"{path}?{urlencode(query)}", json.dumps({"encrypt": encrypt}).encode())


def verify_echostr(path: str, echo: str, token: str, aes_key: str, receive_id: str) -> str:
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    echostr = _cipher(aes_key).encrypt(echo, receive_id).decode()
    query = {
        "msg_signature": wechat_signature(token, ts, nonce, echostr),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": echostr,
    }
    return f"{path}?{urlencode(query)}"


def decrypt_reply(
    xml: str, aes_key: str = MP_AES_KEY, receive_id: str = MP_APP_ID, token: str = MP_TOKEN
) -> dict[str, Any]:
    """Check the signature of an encrypted passive reply and return its inner fields."""
    outer = xmltodict.parse(xml)["xml"]
    expected = wechat_signature(token, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
    assert outer["MsgSignature"] == expected, "reply signature does not verify"
    inner = _cipher(aes_key).decrypt(outer["Encrypt"], receive_id)
    return dict(xmltodict.parse(inner)["xml"])


def decrypt_aibot_reply(
    data: dict[str, Any], aes_key: str = AIBOT_AES_KEY, token: str = AIBOT_TOKEN
) -> dict[str, Any]:
    expected = wechat_signature(token, str(data["timestamp"]), data["nonce"], data["encrypt"])
    assert data["msgsignature"] == expected, "reply signature does not verify"
    return dict(json.loads(_cipher(aes_key).decrypt(data["encrypt"], "")))
