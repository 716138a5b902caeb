"""Errors of the WeChat / WeCom APIs, classified the way the outbox needs them.

The outbox asks one question of a failed send: try again later (``temporary``), or record the
failure and stop (``permanent``). Token errors are settled inside the clients (one retry with
a fresh token); when they still reach the caller, trying again will not help.
"""

from __future__ import annotations

# Worth trying again later: system busy (-1), frequency limits (45009, 45011).
TEMPORARY = frozenset({-1, 45009, 45011})
# The access token is invalid (40001, 40014) or expired (42001): fetch a new one, try once more.
TOKEN_INVALID = frozenset({40001, 40014, 42001})


class WeChatAPIError(Exception):
    """WeChat answered with ``errcode != 0``; ``errcode`` is ``None`` when it never answered."""

    def __init__(self, errcode: int | None, errmsg: str = "") -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        code = f"errcode {self.errcode}"
        return f"{code}: {self.errmsg}" if self.errmsg else code

    @property
    def temporary(self) -> bool:
        return self.errcode in TEMPORARY

    @property
    def permanent(self) -> bool:
        return not self.temporary

    @property
    def token_invalid(self) -> bool:
        return self.errcode in TOKEN_INVALID


class TransportError(WeChatAPIError):
    """No usable answer: the connection failed, an HTTP error status, or a body that is not a
    JSON object. Temporary unless the status says the request itself is wrong (4xx)."""

    def __init__(self, what: str, *, status: int | None = None, temporary: bool = True) -> None:
        super().__init__(None, what)
        self.status = status
        self._temporary = temporary

    def __str__(self) -> str:
        return self.errmsg

    @property
    def temporary(self) -> bool:
        return self._temporary


class ApiTimeout(TransportError):
    """No answer within the call's timeout. WeChat may still have delivered the message."""
