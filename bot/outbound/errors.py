"""Errors of the WeChat/WeCom APIs, classified the way the outbox needs them."""

from __future__ import annotations

# Worth trying again later: system busy, rate limits.
TEMPORARY = frozenset({-1, 45009, 45011})
# The access token is invalid or expired: fetch a new one and try once more.
TOKEN_INVALID = frozenset({40001, 40014, 42001})


class WeChatAPIError(Exception):
    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"{errcode} {errmsg}".strip())
        self.errcode = errcode
        self.errmsg = errmsg

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
    """No usable answer: a timeout, a refused connection or an HTTP 5xx. Always temporary."""

    def __init__(self, what: str) -> None:
        super().__init__(-2, what)

    @property
    def temporary(self) -> bool:
        return True


class ApiTimeout(TransportError):
    pass
