"""WeCom self-built app (企业微信自建应用) callbacks: always encrypted."""

from __future__ import annotations

import logging

from aiohttp import web
from wechatpy.enterprise.replies import TextReply

from bot.channels import common
from bot.channels.common import BadRequest
from bot.channels.mp import encrypt_reply, to_incoming
from bot.channels.wecom import WeComCallback
from bot.config import WorkConfig
from bot.pipeline import Pipeline

log = logging.getLogger(__name__)


class WorkChannel(WeComCallback):
    def __init__(
        self, config: WorkConfig, pipeline: Pipeline, *, window: int, budget: float, max_body: int
    ) -> None:
        super().__init__(
            path=config.path,
            token=config.token,
            encoding_aes_key=config.encoding_aes_key,
            receive_id=config.corp_id,
            pipeline=pipeline,
            window=window,
            budget=budget,
            max_body=max_body,
        )
        self.config = config

    async def receive(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce, body = await self.signed_body(request)
        try:
            encrypt = common.encrypted_part(body)
            if not encrypt:
                raise BadRequest("no Encrypt element")
            plain = self.decrypt(signature, timestamp, nonce, encrypt)
            incoming = common.checked(to_incoming(common.parse_xml(plain), channel="work"))
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
