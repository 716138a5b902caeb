"""The outbox senders of broadcasts: WeCom app messages and app group chats, and Official
Account customer-service messages to the workers of an audience.

They differ from the message pipeline's senders in two ways that matter at thousands of
sends a minute: the access token is kept in memory for a few seconds instead of read from
the database before every send, and WeCom app messages ask WeCom's duplicate check to drop a
copy of one already delivered (the send a crash left in doubt is sent again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import ClientSession

from bot.outbound import MPClient, WeChatAPIError, WorkClient
from bot.outbound.tokens import CachedToken, Fetch, TokenStore
from bot.outbox import Sender
from bot.services import Services
from bot.storage.tokens import SqlTokenStore
from scheduler.audiences import APPCHAT, MP, WORK


class CachedTokenStore:
    """A token store that remembers the shared one's answer for ``ttl`` seconds. WeChat keeps
    a replaced token valid for minutes, and a rejected token is dropped here at once."""

    def __init__(
        self, inner: TokenStore, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[CachedToken, float]] = {}

    async def get(self, key: str) -> CachedToken | None:
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[1] < self.ttl:
            return cached[0]
        token = await self.inner.get(key)
        if token is not None:
            self._cache[key] = (token, self.clock())
        return token

    async def refresh(
        self,
        key: str,
        usable: Callable[[CachedToken | None], bool],
        fetch: Fetch,
        clock: Callable[[], float],
    ) -> CachedToken:
        token = await self.inner.refresh(key, usable, fetch, clock)
        self._cache[key] = (token, self.clock())
        return token

    async def drop(self, key: str, token: str) -> None:
        self._cache.pop(key, None)
        await self.inner.drop(key, token)


class BroadcastWorkClient(WorkClient):
    async def send_once(
        self, userid: str, msgtype: str, text: str, duplicate_check: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "touser": userid,
            "msgtype": msgtype,
            "agentid": self.agentid,
            msgtype: {"content": text},
        }
        if duplicate_check:
            body.update(enable_duplicate_check=1, duplicate_check_interval=duplicate_check)
        answer = await self._post("/cgi-bin/message/send", body)
        if userid in str(answer.get("invaliduser") or "").split("|"):
            # The member left or is outside the app's visible range: trying again won't help.
            raise WeChatAPIError(81013, f"invalid user {userid}")
        return answer

    async def appchat_send(self, chatid: str, msgtype: str, text: str) -> dict[str, Any]:
        return await self._post(
            "/cgi-bin/appchat/send",
            {"chatid": chatid, "msgtype": msgtype, msgtype: {"content": text}, "safe": 0},
        )


def install_senders(http: ClientSession, services: Services, senders: dict[str, Sender]) -> None:
    config = services.config
    store = CachedTokenStore(SqlTokenStore(services.sessions))
    timeout = config.outbox.http_timeout_seconds
    work, mp = config.wechat.work, config.wechat.mp
    if work.corp_id and work.secret:
        client = BroadcastWorkClient(
            http, work.api_base, work.corp_id, work.secret, work.agent_id, store, timeout=timeout
        )
        interval = config.broadcasts.duplicate_check_minutes * 60

        async def work_member(recipient: str, payload: dict[str, Any]) -> None:
            msgtype = "markdown" if payload.get("type") == "markdown" else "text"
            await client.send_once(recipient, msgtype, payload["text"], interval)

        async def app_chat(recipient: str, payload: dict[str, Any]) -> None:
            msgtype = "markdown" if payload.get("type") == "markdown" else "text"
            await client.appchat_send(recipient, msgtype, payload["text"])

        senders[WORK] = work_member
        senders[APPCHAT] = app_chat
    if mp.app_id and mp.app_secret:
        mp_client = MPClient(http, mp.api_base, mp.app_id, mp.app_secret, store, timeout=timeout)

        async def mp_member(recipient: str, payload: dict[str, Any]) -> None:
            await mp_client.send_text(recipient, payload["text"])

        senders[MP] = mp_member
