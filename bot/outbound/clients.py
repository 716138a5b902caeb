"""Outbound WeChat and WeCom API calls with aiohttp.

wechatpy's client is synchronous and retries an invalid token without bound; these calls have
a timeout, raise :class:`WeChatAPIError` on a non-zero errcode, and retry a token error once
with a fresh token — never more. URLs carry the token, so they are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from bot.outbound.errors import ApiTimeout, TransportError, WeChatAPIError
from bot.outbound.tokens import AccessTokenManager, TokenStore


async def call_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: Mapping[str, str],
    json: Any = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - the HTTP call's own timeout
) -> dict[str, Any]:
    try:
        async with session.request(
            method, url, params=params, json=json, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            if resp.status >= 500:
                raise TransportError(f"HTTP {resp.status}")
            data = await resp.json(content_type=None)
    except TimeoutError:
        raise ApiTimeout(f"no answer within {timeout:g} s") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise TransportError(type(exc).__name__) from None
    if not isinstance(data, dict):
        raise TransportError("answer is not a JSON object")
    errcode = int(data.get("errcode", 0) or 0)
    if errcode != 0:
        raise WeChatAPIError(errcode, str(data.get("errmsg", "")))
    return data


class _TokenClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        tokens: AccessTokenManager,
        timeout: float,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):  # at most one retry, with a fresh token
            token = await self.tokens.get()
            try:
                return await call_json(
                    self.session,
                    "POST",
                    self.base_url + path,
                    params={"access_token": token},
                    json=body,
                    timeout=self.timeout,
                )
            except WeChatAPIError as exc:
                if not exc.token_invalid or attempt == 2:
                    raise
                await self.tokens.invalidate(token)
        raise AssertionError("unreachable")  # pragma: no cover


class MPClient(_TokenClient):
    """Official Account: customer-service and template messages."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        appid: str,
        secret: str,
        store: TokenStore,
        timeout: float = 5.0,
    ) -> None:
        async def fetch() -> tuple[str, int]:
            data = await call_json(
                session,
                "GET",
                base_url.rstrip("/") + "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": appid, "secret": secret},
                timeout=timeout,
            )
            return str(data["access_token"]), int(data.get("expires_in", 7200))

        super().__init__(
            session, base_url, AccessTokenManager(store, fetch, f"mp:{appid}"), timeout
        )

    async def send_text(self, openid: str, text: str) -> None:
        await self._post(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": text}},
        )

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, Any], url: str | None = None
    ) -> None:
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: v if isinstance(v, dict) else {"value": v} for k, v in data.items()},
        }
        if url:
            body["url"] = url
        await self._post("/cgi-bin/message/template/send", body)


class WorkClient(_TokenClient):
    """WeCom self-built app: app messages to members, and app group chats."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        corpid: str,
        secret: str,
        agentid: int,
        store: TokenStore,
        timeout: float = 5.0,
    ) -> None:
        async def fetch() -> tuple[str, int]:
            data = await call_json(
                session,
                "GET",
                base_url.rstrip("/") + "/cgi-bin/gettoken",
                params={"corpid": corpid, "corpsecret": secret},
                timeout=timeout,
            )
            return str(data["access_token"]), int(data.get("expires_in", 7200))

        super().__init__(
            session, base_url, AccessTokenManager(store, fetch, f"work:{corpid}:{agentid}"), timeout
        )
        self.agentid = agentid

    async def send_text(self, userids: Sequence[str], text: str) -> None:
        await self._post(
            "/cgi-bin/message/send",
            {
                "touser": "|".join(userids),
                "msgtype": "text",
                "agentid": self.agentid,
                "text": {"content": text},
            },
        )

    async def send_markdown(self, userids: Sequence[str], text: str) -> None:
        await self._post(
            "/cgi-bin/message/send",
            {
                "touser": "|".join(userids),
                "msgtype": "markdown",
                "agentid": self.agentid,
                "markdown": {"content": text},
            },
        )

    async def appchat_send_text(self, chatid: str, text: str) -> None:
        await self._post(
            "/cgi-bin/appchat/send",
            {"chatid": chatid, "msgtype": "text", "text": {"content": text}},
        )


class GroupRobot:
    """WeCom group robot webhooks (群机器人). The key is the credential: never log it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float = 5.0) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + "/cgi-bin/webhook/send"
        self.timeout = timeout

    async def send_text(self, key: str, text: str, mentioned: Sequence[str] = ()) -> None:
        body: dict[str, Any] = {"msgtype": "text", "text": {"content": text}}
        if mentioned:
            body["text"]["mentioned_list"] = list(mentioned)
        await call_json(
            self.session, "POST", self.url, params={"key": key}, json=body, timeout=self.timeout
        )

    async def send_markdown(self, key: str, text: str) -> None:
        await call_json(
            self.session,
            "POST",
            self.url,
            params={"key": key},
            json={"msgtype": "markdown", "markdown": {"content": text}},
            timeout=self.timeout,
        )


__all__ = ["GroupRobot", "MPClient", "WorkClient", "call_json"]
