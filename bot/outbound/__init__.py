"""Outbound WeChat / WeCom API calls (aiohttp), access tokens and error classification."""

from bot.outbound.clients import DEFAULT_TIMEOUT, GroupRobot, MPClient, WorkClient, call_json
from bot.outbound.errors import (
    TEMPORARY,
    TOKEN_INVALID,
    ApiTimeout,
    TransportError,
    WeChatAPIError,
)
from bot.outbound.tokens import (
    AccessTokenManager,
    CachedToken,
    Fetch,
    MemoryTokenStore,
    TokenStore,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "TEMPORARY",
    "TOKEN_INVALID",
    "AccessTokenManager",
    "ApiTimeout",
    "CachedToken",
    "Fetch",
    "GroupRobot",
    "MPClient",
    "MemoryTokenStore",
    "TokenStore",
    "TransportError",
    "WeChatAPIError",
    "WorkClient",
    "call_json",
]
