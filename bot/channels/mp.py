"""WeChat Official Account (公众号) callbacks: plain, compatible and AES safe mode."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from wechatpy.crypto import PrpCrypto
from wechatpy.replies import TextReply

from bot.channels import common
from bot.channels.common import BadRequest
from bot.config import MPConfig
from bot.messages import Incoming, Kind
from bot.pipeline import Pipeline

log = logging.getLogger(__name__)


def to_incoming(fields: dict[str, str], channel: str = "mp") -> Incoming:
    """Turn the fields of a vetted XML message into an ``Incoming`` (the way wechatpy's
    ``parse_message`` reads them: event names in lower case, ``qrscene_`` keys unwrapped)."""
    source, target = fields.get("FromUserName", ""), fields.get("ToUserName", "")
    msg_type = fields.get("MsgType", "").lower()
    if not msg_type:
        raise BadRequest("message has no MsgType")
    if not source:
        raise BadRequest("message has no FromUserName")
    try:
        created = int(fields.get("CreateTime") or 0)
    except ValueError:
        raise BadRequest("CreateTime is not a number") from None
    agent = fields.get("AgentID", "")
    if msg_type == "event":
        event = fields.get("Event", "").lower()
        key = fields.get("EventKey", "")
        if event == "subscribe" and key.startswith("qrscene_"):
            key = key.removeprefix("qrscene_")  # subscribed by scanning a QR code with a scene
        # Events carry no MsgId: the sender, the time and the event name identify one.
        dedup = f"{agent}:{source}:{created}:{event}" if agent else f"{source}:{created}:{event}"
        return Incoming(
            channel,
            target,
            source,
            Kind.EVENT,
            dedup,
            event=event,
            event_key=key,
            raw_type="event",
            created_at=created,
        )

    msg_id = fields.get("MsgId", "")
    dedup = msg_id or f"{source}:{created}:{msg_type}"
    if agent:
        dedup = f"{agent}:{dedup}"
    # Drivers often talk instead of typing: with speech recognition on, WeChat sends the
    # recognised words along with a voice message, and we answer them like text.
    spoken = fields.get("Recognition", "") if msg_type == "voice" else ""
    if msg_type == "text" or spoken:
        return Incoming(
            channel,
            target,
            source,
            Kind.TEXT,
            dedup,
            text=spoken or fields.get("Content", ""),
            raw_type=msg_type,
            created_at=created,
        )
    return Incoming(
        channel,
        target,
        source,
        Kind.OTHER,
        dedup,
        raw_type=msg_type,
        created_at=created,
    )


class MPChannel:
    def __init__(
        self, config: MPConfig, pipeline: Pipeline, *, window: int, budget: float, max_body: int
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.window = window
        self.budget = budget
        self.max_body = max_body
        self.crypto = (
            PrpCrypto(aes_key(config.encoding_aes_key)) if config.encoding_aes_key else None
        )

    def setup(self, app: web.Application) -> None:
        app.router.add_get(self.config.path, self.verify)
        app.router.add_post(self.config.path, self.receive)

    def _check_signature(self, request: web.Request) -> tuple[str, str]:
        signature, timestamp, nonce = common.require_params(
            request, "signature", "timestamp", "nonce"
        )
        if not common.signature_matches(signature, self.config.token, timestamp, nonce):
            raise web.HTTPForbidden(text="invalid signature")
        return timestamp, nonce

    async def verify(self, request: web.Request) -> web.Response:
        self._check_signature(request)
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        timestamp, nonce = self._check_signature(request)
        common.check_timestamp(timestamp, self.window)
        body = await common.read_body(request, self.max_body)
        encrypted = request.query.get("encrypt_type", "raw") == "aes"
        try:
            if encrypted:
                plain = self._decrypt(request, common.encrypted_part(body), timestamp, nonce)
                fields = common.parse_xml(plain)
            else:
                fields = common.parse_xml(body)
            incoming = common.checked(to_incoming(fields))
        except BadRequest as exc:
            log.warning("bad callback", extra={"channel": "mp", "why": str(exc)})
            return web.Response(status=400, text="bad request")
        replies = await self.pipeline.handle(incoming, self.budget)
        if not replies:
            return web.Response(text="success")
        xml = TextReply(
            source=incoming.account,
            target=incoming.user_id,
            content=common.cdata_safe(common.join_replies(replies)),
        ).render()
        if encrypted:
            xml = self._encrypt(xml, nonce)
        return web.Response(text=xml, content_type="application/xml")

    def _decrypt(self, request: web.Request, encrypt: str, timestamp: str, nonce: str) -> str:
        if self.crypto is None:
            raise web.HTTPForbidden(text="safe mode is not configured")
        msg_signature = request.query.get("msg_signature", "")
        if not encrypt or not msg_signature:
            raise BadRequest("no Encrypt element or msg_signature")
        if not common.signature_matches(
            msg_signature, self.config.token, timestamp, nonce, encrypt
        ):
            raise web.HTTPForbidden(text="invalid message signature")
        try:
            plain = self.crypto.decrypt(encrypt, self.config.app_id)
        except Exception:
            raise BadRequest("cannot decrypt") from None
        return str(plain)

    def _encrypt(self, xml: str, nonce: str) -> str:
        assert self.crypto is not None
        return encrypt_reply(self.crypto, self.config.token, self.config.app_id, xml, nonce)


def encrypt_reply(crypto: PrpCrypto, token: str, receive_id: str, xml: str, nonce: str) -> str:
    timestamp = str(int(time.time()))
    encrypt = crypto.encrypt(xml, receive_id).decode()
    signature = common.wechat_signature(token, timestamp, nonce, encrypt)
    return (
        f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
    )


def aes_key(encoding_aes_key: str) -> bytes:
    import base64

    return base64.b64decode(encoding_aes_key + "=")
