"""What the two WeCom callbacks share: the msg_signature over the encrypted payload, WeCom's
AES envelope (wechatpy.enterprise) and the URL check that answers the decrypted echostr."""

from __future__ import annotations

from aiohttp import web
from wechatpy.enterprise.crypto import PrpCrypto

from bot.channels import common
from bot.channels.common import BadRequest
from bot.channels.mp import aes_key
from bot.pipeline import Pipeline


class WeComCallback:
    def __init__(
        self,
        *,
        path: str,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        pipeline: Pipeline,
        window: int,
        budget: float,
        max_body: int,
    ) -> None:
        self.path = path
        self.token = token
        self.receive_id = receive_id  # the corp id; empty for the intelligent robot
        self.pipeline = pipeline
        self.window = window
        self.budget = budget
        self.max_body = max_body
        self.crypto = PrpCrypto(aes_key(encoding_aes_key))

    def setup(self, app: web.Application) -> None:
        app.router.add_get(self.path, self.verify)
        app.router.add_post(self.path, self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    def decrypt(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Check the signature (constant time) before touching the ciphertext."""
        if not common.signature_matches(signature, self.token, timestamp, nonce, encrypt):
            raise web.HTTPForbidden(text="invalid message signature")
        try:
            return str(self.crypto.decrypt(encrypt, self.receive_id))
        except Exception:
            raise BadRequest("cannot decrypt") from None

    async def verify(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce, echostr = common.require_params(
            request, "msg_signature", "timestamp", "nonce", "echostr"
        )
        try:
            return web.Response(text=self.decrypt(signature, timestamp, nonce, echostr))
        except BadRequest:
            return web.Response(status=400, text="bad request")

    async def signed_body(self, request: web.Request) -> tuple[str, str, str, bytes]:
        """Signature parameters and the body, after the timestamp and size checks."""
        signature, timestamp, nonce = common.require_params(
            request, "msg_signature", "timestamp", "nonce"
        )
        common.check_timestamp(timestamp, self.window)
        return signature, timestamp, nonce, await common.read_body(request, self.max_body)
