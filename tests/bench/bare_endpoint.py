"""The yardstick for the callback benchmark: an aiohttp endpoint that only decrypts, parses and
encrypts a fixed reply with wechatpy — no signature check, no database, no dispatcher."""

from __future__ import annotations

import argparse
import base64
import time

import xmltodict
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto
from wechatpy.replies import TextReply

from bot.channels.mp import encrypt_reply
from tests.support import wechat


def make_app() -> web.Application:
    crypto = PrpCrypto(base64.b64decode(wechat.MP_AES_KEY + "="))

    async def callback(request: web.Request) -> web.Response:
        body = await request.read()
        encrypt = xmltodict.parse(body)["xml"]["Encrypt"]
        msg = parse_message(crypto.decrypt(encrypt, wechat.MP_APP_ID))
        reply = TextReply(
            source=msg.target, target=msg.source, content="菜单", time=int(time.time())
        ).render()
        nonce = request.query.get("nonce", "n")
        return web.Response(
            text=encrypt_reply(crypto, wechat.MP_TOKEN, wechat.MP_APP_ID, reply, nonce),
            content_type="application/xml",
        )

    app = web.Application()
    app.router.add_post("/wechat/mp", callback)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
