"""Access tokens: cached, refreshed one at a time, shared through a store.

WeChat invalidates the previous token a few minutes after a new one is fetched, so instances
must share one token rather than each fetch their own: the store (the database in production)
is where they meet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: float  # unix time


Fetch = Callable[[], Awaitable[tuple[str, int]]]  # → (token, expires_in seconds)


class TokenStore(Protocol):
    async def get(self, key: str) -> CachedToken | None: ...

    async def refresh(
        self,
        key: str,
        usable: Callable[[CachedToken | None], bool],
        fetch: Fetch,
        clock: Callable[[], float],
    ) -> CachedToken:
        """Under a lock all sharers respect: return the stored token if ``usable``, else fetch,
        store and return a new one. Only one sharer fetches at a time."""
        ...

    async def drop(self, key: str, token: str) -> None:
        """Forget ``token`` if it is still the stored one."""


class MemoryTokenStore:
    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._lock = asyncio.Lock()

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
            self._tokens[key] = CachedToken(token, clock() + expires_in)
            return self._tokens[key]

    async def get(self, key: str) -> CachedToken | None:
        return self._tokens.get(key)

    async def put(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = CachedToken(token, expires_at)

    async def drop(self, key: str, token: str) -> None:
        if (cached := self._tokens.get(key)) is not None and cached.token == token:
            del self._tokens[key]


class AccessTokenManager:
    def __init__(
        self,
        store: TokenStore,
        fetch: Fetch,
        key: str,
        clock: Callable[[], float] = time.time,
        margin: float = 300.0,
    ) -> None:
        self.store = store
        self.fetch = fetch
        self.key = key
        self.clock = clock
        self.margin = margin  # refresh this long before expiry
        self._lock = asyncio.Lock()

    def _fresh(self, cached: CachedToken | None) -> bool:
        return cached is not None and cached.expires_at - self.margin > self.clock()

    async def get(self) -> str:
        cached = await self.store.get(self.key)
        if cached is not None and self._fresh(cached):
            return cached.token
        async with self._lock:
            # Someone (this process or another instance) may have refreshed while we waited:
            # the store re-checks under its own lock before fetching.
            fresh = await self.store.refresh(self.key, self._fresh, self.fetch, self.clock)
            return fresh.token

    async def invalidate(self, token: str) -> None:
        await self.store.drop(self.key, token)
