"""WeCom self-built app (企业微信自建应用) callbacks: always encrypted."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.replies import TextReply

from bot.channels import common
from bot.channels.common import BadRequest
from bot.channels.mp import aes_key, encrypt_reply, to_incoming
from bot.config import WorkConfig
from bot.pipeline import Pipeline

log = logging.getLogger(__name__)


class WorkChannel:
    def __init__(
        self, config: WorkConfig, pipeline: Pipeline, *, window: int, budget: float, max_body: int
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.window = window
        self.budget = budget
        self.max_body = max_body
        self.crypto = PrpCrypto(aes_key(config.encoding_aes_key))

    def setup(self, app: web.Application) -> None:
        app.router.add_get(self.config.path, self.verify)
        app.router.add_post(self.config.path, self.receive)

    def _decrypt(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        if not common.signature_matches(signature, self.config.token, timestamp, nonce, encrypt):
            raise web.HTTPForbidden(text="invalid message signature")
        try:
            return str(self.crypto.decrypt(encrypt, self.config.corp_id))
        except Exception:
            raise BadRequest("cannot decrypt") from None

    async def verify(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce, echostr = common.require_params(
            request, "msg_signature", "timestamp", "nonce", "echostr"
        )
        try:
            return web.Response(text=self._decrypt(signature, timestamp, nonce, echostr))
        except BadRequest:
            return web.Response(status=400, text="bad request")

    async def receive(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce = common.require_params(
            request, "msg_signature", "timestamp", "nonce"
        )
        common.check_timestamp(timestamp, self.window)
        body = await common.read_body(request, self.max_body)
        try:
            envelope: dict[str, Any] = common.parse_xml(body)
            encrypt = envelope.get("Encrypt")
            if not isinstance(encrypt, str):
                raise BadRequest("no Encrypt element")
            xml = common.vet_xml(self._decrypt(signature, timestamp, nonce, encrypt))
            incoming = to_incoming(xml, channel="work", parser=parse_message)
        except BadRequest as exc:
            log.warning("bad callback", extra={"channel": "work", "why": str(exc)})
            return web.Response(status=400, text="bad request")
        replies = await self.pipeline.handle(incoming, self.budget)
        if not replies:
            return web.Response(text="success")
        reply = TextReply(
            source=incoming.account,
            target=incoming.user_id,
            agent=self.config.agent_id,
            content=common.cdata_safe(common.join_replies(replies)),
        ).render()
        xml_out = encrypt_reply(self.crypto, self.config.token, self.config.corp_id, reply, nonce)
        return web.Response(text=xml_out, content_type="application/xml")
