"""Dev channel: signed (optionally) JSON over HTTP, so a newcomer or another gateway can talk
to the bot without a WeChat account. It goes through the same pipeline as WeChat."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from aiohttp import web

from bot.channels import common
from bot.config import DevConfig
from bot.messages import Incoming, Kind
from bot.pipeline import Pipeline


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class DevChannel:
    def __init__(
        self, config: DevConfig, pipeline: Pipeline, *, window: int, max_body: int
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.window = window
        self.max_body = max_body

    def setup(self, app: web.Application) -> None:
        app.router.add_post(self.config.path, self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        body = await common.read_body(request, self.max_body)
        if self.config.secret:
            # Checked before the body is parsed, like the WeChat signatures.
            timestamp = request.headers.get("X-Unionbot-Timestamp", "")
            given = request.headers.get("X-Unionbot-Signature", "")
            common.check_timestamp(timestamp, self.window, time.time())
            if not hmac.compare_digest(
                given.encode(), sign(self.config.secret, timestamp, body).encode()
            ):
                raise web.HTTPForbidden(text="invalid signature")
        try:
            incoming = common.checked(_incoming(common.load_json(body)))
        except (ValueError, common.BadRequest) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        replies = await self.pipeline.handle(incoming, budget=None) or []
        return web.json_response(
            {"replies": [r.to_json() for r in replies]},
            dumps=lambda v: json.dumps(v, ensure_ascii=False),
        )


def _incoming(data: Any) -> Incoming:
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    user, text, chat = data.get("user_id"), data.get("text"), data.get("chat_id")
    if not isinstance(user, str) or not user.strip() or len(user) > 128:
        raise ValueError("user_id must be a non-empty string")
    if not isinstance(text, str):
        raise ValueError("text must be a string")
    if chat is not None and (not isinstance(chat, str) or len(chat) > 128):
        raise ValueError("chat_id must be a string or null")
    message_id = data.get("message_id") or uuid.uuid4().hex
    if not isinstance(message_id, str) or len(message_id) > 128:
        raise ValueError("message_id must be a string")
    clean = common.clean_text
    return Incoming(
        channel="dev",
        account="dev",
        user_id=clean(user),
        kind=Kind.TEXT,
        # A gateway's message ids are unique per sender at best: one sender's id must never
        # fetch the stored reply to another's message.
        dedup_key=f"{clean(user)}:{clean(message_id)}",
        text=clean(text[:2000]),
        chat_id=None if chat is None else clean(chat),
        raw_type="text",
        created_at=int(time.time()),
    )
