"""Outbound WeChat and WeCom API calls with aiohttp.

wechatpy's client is synchronous, has no timeout and retries an invalid token without bound;
these calls have a timeout, raise :class:`WeChatAPIError` on a non-zero errcode, and retry a
token error once with a fresh token, never more. URLs carry the access token or the robot key
in the query string, so URLs are never logged nor put into an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from bot.outbound.errors import ApiTimeout, TransportError, WeChatAPIError
from bot.outbound.tokens import AccessTokenManager, TokenStore

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


async def call_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: Mapping[str, str],
    body: Mapping[str, Any] | None = None,
    http_timeout: aiohttp.ClientTimeout,
) -> dict[str, Any]:
    """One API call: the decoded answer, or :class:`WeChatAPIError` when ``errcode != 0``."""
    endpoint = URL(url).path  # names the call in errors; the query (token, key) never
    # Sent as UTF-8 text, the way wechatpy does: some WeChat APIs show \uXXXX escapes as is.
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    try:
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=_JSON_HEADERS if data is not None else None,
            timeout=http_timeout,
        ) as resp:
            if resp.status >= 400:
                raise TransportError(
                    f"HTTP {resp.status} from {endpoint}",
                    status=resp.status,
                    temporary=resp.status >= 500 or resp.status == 429,
                )
            # Some endpoints label their JSON text/plain: accept any content type.
            answer = await resp.json(content_type=None)
    except TimeoutError:
        raise ApiTimeout(f"no answer from {endpoint} in time") from None
    except (aiohttp.ClientError, ValueError) as exc:
        # ``from None``, and the message cut at any query: aiohttp's messages and tracebacks
        # can carry the full URL, and with it the token.
        detail = (str(exc).split("?", 1)[0].splitlines() or [""])[0]
        raise TransportError(f"{type(exc).__name__} calling {endpoint}: {detail}") from None
    if not isinstance(answer, dict):
        raise TransportError(f"{endpoint} answered something that is not a JSON object")
    try:
        errcode = int(answer.get("errcode") or 0)
    except (TypeError, ValueError):
        raise TransportError(f"{endpoint} answered errcode {answer['errcode']!r}") from None
    if errcode != 0:
        raise WeChatAPIError(errcode, str(answer.get("errmsg", "")))
    return answer


class _TokenClient:
    """What the Official Account and WeCom app clients share: calls with an access token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        store: TokenStore,
        key: str,
        token_path: str,
        token_params: Mapping[str, str],
        timeout: float,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.http_timeout = aiohttp.ClientTimeout(total=timeout)
        self._token_url = self.base_url + token_path
        self._token_params = dict(token_params)
        self.tokens = AccessTokenManager(store, self._fetch_token, key)

    async def _fetch_token(self) -> tuple[str, int]:
        answer = await call_json(
            self.session,
            "GET",
            self._token_url,
            params=self._token_params,
            http_timeout=self.http_timeout,
        )
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransportError("token answer without an access_token")
        return token, int(answer.get("expires_in", 7200))

    async def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        token = await self.tokens.get()
        try:
            return await self._post_with(token, path, body)
        except WeChatAPIError as exc:
            if not exc.token_invalid:
                raise
            # Once only: a second token error means the credentials are wrong, not stale.
            log.info("access token rejected, retrying once", extra={"errcode": exc.errcode})
            await self.tokens.invalidate(token)
        return await self._post_with(await self.tokens.get(), path, body)

    async def _post_with(self, token: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await call_json(
            self.session,
            "POST",
            self.base_url + path,
            params={"access_token": token},
            body=body,
            http_timeout=self.http_timeout,
        )


class MPClient(_TokenClient):
    """Official Account (公众号): customer-service messages (48 h window) and templates."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        appid: str,
        secret: str,
        store: TokenStore,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            session,
            base_url,
            store,
            key=f"mp:{appid}",
            token_path="/cgi-bin/token",
            token_params={"grant_type": "client_credential", "appid": appid, "secret": secret},
            timeout=timeout,
        )

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        return await self._post(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": text}},
        )

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: Mapping[str, Any],
        url: str | None = None,
    ) -> dict[str, Any]:
        """``data`` maps field names to ``{"value": ..., "color": ...}`` or to a bare value."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: v if isinstance(v, Mapping) else {"value": v} for k, v in data.items()},
        }
        if url:
            body["url"] = url
        return await self._post("/cgi-bin/message/template/send", body)


class WorkClient(_TokenClient):
    """WeCom self-built app (企业微信自建应用): app messages to members and app group chats.

    A send to several members succeeds when some of them are unknown; the answer's
    ``invaliduser`` lists them (all unknown is errcode 81013)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        corpid: str,
        secret: str,
        agentid: int,
        store: TokenStore,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            session,
            base_url,
            store,
            key=f"work:{corpid}:{agentid}",
            token_path="/cgi-bin/gettoken",
            token_params={"corpid": corpid, "corpsecret": secret},
            timeout=timeout,
        )
        self.agentid = agentid

    async def send_text(self, userids: Sequence[str], text: str) -> dict[str, Any]:
        return await self.send_app(userids, "text", text)

    async def send_markdown(self, userids: Sequence[str], text: str) -> dict[str, Any]:
        return await self.send_app(userids, "markdown", text)

    async def send_app(
        self, userids: Sequence[str], msgtype: str, text: str, *, duplicate_check: int = 0
    ) -> dict[str, Any]:
        """``msgtype`` text or markdown. ``duplicate_check`` seconds (at most 4 hours): WeCom
        does not deliver again a message identical to one sent that recently."""
        if isinstance(userids, str):  # a str is a Sequence too: "abc" would become "a|b|c"
            raise TypeError("userids must be a list of user ids, not a string")
        body: dict[str, Any] = {
            "touser": "|".join(userids),
            "msgtype": msgtype,
            "agentid": self.agentid,
            msgtype: {"content": text},
        }
        if duplicate_check:
            body.update(enable_duplicate_check=1, duplicate_check_interval=duplicate_check)
        return await self._post("/cgi-bin/message/send", body)

    async def appchat_send_text(self, chatid: str, text: str) -> dict[str, Any]:
        return await self.appchat_send(chatid, "text", text)

    async def appchat_send(self, chatid: str, msgtype: str, text: str) -> dict[str, Any]:
        return await self._post(
            "/cgi-bin/appchat/send",
            {"chatid": chatid, "msgtype": msgtype, msgtype: {"content": text}, "safe": 0},
        )


class GroupRobot:
    """WeCom group robot webhooks (群机器人), about 20 messages a minute per robot.

    The webhook key is the robot's only credential: it goes in the query string, never in a
    log line or an error."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + "/cgi-bin/webhook/send"
        self.http_timeout = aiohttp.ClientTimeout(total=timeout)

    async def send_text(self, key: str, text: str, mentioned: Sequence[str] = ()) -> dict[str, Any]:
        """``mentioned`` are WeCom user ids, or ``"@all"``."""
        content: dict[str, Any] = {"content": text}
        if mentioned:
            content["mentioned_list"] = list(mentioned)
        return await self._send(key, {"msgtype": "text", "text": content})

    async def send_markdown(self, key: str, text: str) -> dict[str, Any]:
        return await self._send(key, {"msgtype": "markdown", "markdown": {"content": text}})

    async def send_news(self, key: str, articles: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """Link cards: each article has ``title`` and ``url``, optionally ``description`` and
        ``picurl``; at most 8."""
        return await self._send(key, {"msgtype": "news", "news": {"articles": list(articles)}})

    async def _send(self, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await call_json(
            self.session,
            "POST",
            self.url,
            params={"key": key},
            body=body,
            http_timeout=self.http_timeout,
        )
