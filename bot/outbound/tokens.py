"""Access tokens: cached, refreshed one at a time, shared through a store.

Every fetch of a new token starts the clock on the old one (WeChat keeps it valid for only a
few more minutes) and counts against a daily quota, so all instances of the service share one
token per app through the store (the database in production) and refresh it under the store's
lock: only one sharer fetches, the others reuse what it stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

Fetch = Callable[[], Awaitable[tuple[str, int]]]
"""Fetch a new token from WeChat: returns ``(access_token, expires_in seconds)``."""


@dataclass(frozen=True, slots=True)
class CachedToken:
    token: str
    expires_at: float  # unix time, as WeChat told it (no safety margin taken off)


class TokenStore(Protocol):
    async def get(self, key: str) -> CachedToken | None:
        """The stored token, fresh or not; ``None`` when there is none."""
        ...

    async def refresh(
        self,
        key: str,
        usable: Callable[[CachedToken | None], bool],
        fetch: Fetch,
        clock: Callable[[], float],
    ) -> CachedToken:
        """Under a lock every sharer respects: return the stored token if ``usable``, else
        ``fetch`` one, store it with ``expires_at = clock() + expires_in`` and return it."""
        ...

    async def drop(self, key: str, token: str) -> None:
        """Forget ``token`` if it is still the stored one (a sharer may have replaced it)."""
        ...


class MemoryTokenStore:
    """One process's tokens; instances of the manager sharing it share the token."""

    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> CachedToken | None:
        return self._tokens.get(key)

    async def refresh(
        self,
        key: str,
        usable: Callable[[CachedToken | None], bool],
        fetch: Fetch,
        clock: Callable[[], float],
    ) -> CachedToken:
        async with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and usable(cached):
                return cached
            token, expires_in = await fetch()
            fresh = CachedToken(token, clock() + expires_in)
            self._tokens[key] = fresh
            return fresh

    async def drop(self, key: str, token: str) -> None:
        cached = self._tokens.get(key)
        if cached is not None and cached.token == token:
            del self._tokens[key]


class AccessTokenManager:
    """The token of one app (``key``), fetched by ``fetch`` and renewed ``margin`` seconds
    before it expires, so a call never goes out with a token about to lapse."""

    def __init__(
        self,
        store: TokenStore,
        fetch: Fetch,
        key: str,
        clock: Callable[[], float] = time.time,
        margin: float = 300.0,
    ) -> None:
        self.store = store
        self.key = key
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        # The last token seen, so a busy sender does not read the store before every call.
        self._local: CachedToken | None = None
        # One refresh at a time in this process: twenty callers wait for one fetch instead of
        # queueing twenty transactions on the store's lock.
        self._lock = asyncio.Lock()

    def _usable(self, cached: CachedToken | None) -> bool:
        return cached is not None and cached.expires_at - self._margin > self._clock()

    async def get(self) -> str:
        local = self._local
        if local is not None and self._usable(local):
            return local.token
        cached = await self.store.get(self.key)
        if cached is None or not self._usable(cached):
            async with self._lock:
                local = self._local
                if local is not None and self._usable(local):
                    return local.token  # refreshed by the caller we waited for
                # The store checks again under its own lock: another instance may have
                # refreshed meanwhile, and then its token is reused rather than replaced.
                cached = await self.store.refresh(self.key, self._usable, self._fetch, self._clock)
        self._local = cached
        return cached.token

    async def invalidate(self, token: str) -> None:
        """WeChat rejected ``token``: forget it here and in the store, unless it was already
        replaced (then the replacement is kept)."""
        if self._local is not None and self._local.token == token:
            self._local = None
        await self.store.drop(self.key, token)
