"""Per-key locks for asyncio that are freed when nobody holds or waits for them.

Nearly every message takes its conversation's lock with nobody else around, so taking a free
lock costs a dictionary lookup: no ``asyncio.Lock`` object, no future. Only a second holder
waits, on a future of its own, and the lock is handed to the waiters in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class KeyedLocks:
    def __init__(self) -> None:
        # A held key maps to the holders waiting for it, first come first served.
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def hold(self, key: str) -> _Held:
        """``async with locks.hold(key):`` — one holder of ``key`` at a time."""
        return _Held(self, key)

    async def acquire(self, key: str) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            self._waiting[key] = deque()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(key)  # handed the lock just as we were cancelled: pass it on
            else:
                queue.remove(turn)
            raise

    def release(self, key: str) -> None:
        queue = self._waiting[key]
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._waiting[key]

    def __len__(self) -> int:
        return len(self._waiting)


class _Held:
    __slots__ = ("_key", "_locks")

    def __init__(self, locks: KeyedLocks, key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        await self._locks.acquire(self._key)

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._locks.release(self._key)
