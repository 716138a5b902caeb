"""WeCom intelligent robot (智能机器人): JSON callbacks when the robot is @-mentioned in a
group or spoken to in private, encrypted like WeCom with an empty receive id."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from aiohttp import web

from bot.channels import common
from bot.channels.common import BadRequest
from bot.channels.wecom import WeComCallback
from bot.config import AIBotConfig
from bot.messages import Incoming, Kind
from bot.pipeline import Pipeline

log = logging.getLogger(__name__)

RECEIVE_ID = ""  # the intelligent robot's callbacks carry no corp id
_MENTION = re.compile(r"^\s*([@＠]\S+\s*)+")  # ＠ as Chinese input methods type it


def to_incoming(data: dict[str, Any]) -> Incoming:
    """Read a decrypted callback. A field of the wrong JSON type reads as missing: a callback
    without a sender or message id is refused, a message without readable text is one the bot
    cannot read (the polite reply)."""
    text, obj = common.json_text, common.json_object
    msgtype = text(data.get("msgtype"))
    user = text(obj(data.get("from")).get("userid"))
    msgid = text(data.get("msgid"))
    if not user or not msgid:
        raise BadRequest("callback without msgid or from.userid")
    chat = text(data.get("chatid")) if data.get("chattype") == "group" else ""
    base: dict[str, Any] = {
        "channel": "aibot",
        "account": text(data.get("aibotid")),
        "user_id": user,
        "dedup_key": msgid,
        "chat_id": chat or None,
        "raw_type": msgtype,
        "reply_url": text(data.get("response_url")) or None,
    }
    if msgtype == "text":
        content = text(obj(data.get("text")).get("content"))
        return Incoming(kind=Kind.TEXT, text=_MENTION.sub("", content).strip(), **base)
    if msgtype == "mixed":
        items = obj(data.get("mixed")).get("msg_item")
        parts = [
            text(obj(item.get("text")).get("content"))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and item.get("msgtype") == "text"
        ]
        if any(parts):
            return Incoming(kind=Kind.TEXT, text=_MENTION.sub("", " ".join(parts)).strip(), **base)
    if msgtype == "event":
        name = text(obj(data.get("event")).get("eventtype")).lower()
        return Incoming(kind=Kind.EVENT, event=name, **base)
    return Incoming(kind=Kind.OTHER, **base)


class AIBotChannel(WeComCallback):
    def __init__(
        self, config: AIBotConfig, pipeline: Pipeline, *, window: int, budget: float, max_body: int
    ) -> None:
        super().__init__(
            path=config.path,
            token=config.token,
            encoding_aes_key=config.encoding_aes_key,
            receive_id=RECEIVE_ID,
            pipeline=pipeline,
            window=window,
            budget=budget,
            max_body=max_body,
        )
        self.config = config

    async def receive(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce, body = await self.signed_body(request)
        try:
            envelope = _json_object(body)
            encrypt = envelope.get("encrypt")
            if not isinstance(encrypt, str):
                raise BadRequest("no encrypt field")
            decrypted = self.decrypt(signature, timestamp, nonce, encrypt)
            incoming = common.checked(to_incoming(_json_object(decrypted)))
        except BadRequest as exc:
            log.warning("bad callback", extra={"channel": "aibot", "why": str(exc)})
            return web.Response(status=400, text="bad request")
        if incoming.raw_type == "stream":
            # A refresh of a stream we already finished: nothing more to say.
            return web.Response(text="")
        replies = await self.pipeline.handle(incoming, self.budget)
        if not replies:
            return web.Response(text="")
        text = common.join_replies(replies)
        if incoming.kind is Kind.EVENT:
            plain: dict[str, Any] = {"msgtype": "text", "text": {"content": text}}
        else:
            # Replies to user messages are stream messages; one finished chunk is a plain answer.
            plain = {
                "msgtype": "stream",
                "stream": {"id": secrets.token_hex(8), "finish": True, "content": text},
            }
        return web.json_response(self._encrypt(json.dumps(plain, ensure_ascii=False), nonce))

    def _encrypt(self, text: str, nonce: str) -> dict[str, Any]:
        timestamp = str(int(time.time()))
        encrypt = self.crypto.encrypt(text, RECEIVE_ID).decode()
        return {
            "encrypt": encrypt,
            "msgsignature": common.wechat_signature(self.config.token, timestamp, nonce, encrypt),
            "timestamp": int(timestamp),
            "nonce": nonce,
        }


def _json_object(data: bytes | str) -> dict[str, Any]:
    value = common.load_json(data)
    if not isinstance(value, dict):
        raise BadRequest("JSON is not an object")
    return value
