"""Outbound WeChat / WeCom API calls (aiohttp), access tokens and error classification."""

from bot.outbound.clients import GroupRobot, MPClient, WorkClient, call_json
from bot.outbound.errors import ApiTimeout, TransportError, WeChatAPIError
from bot.outbound.tokens import AccessTokenManager, CachedToken, MemoryTokenStore, TokenStore

__all__ = [
    "AccessTokenManager",
    "ApiTimeout",
    "CachedToken",
    "GroupRobot",
    "MPClient",
    "MemoryTokenStore",
    "TokenStore",
    "TransportError",
    "WeChatAPIError",
    "WorkClient",
    "call_json",
]
