"""Group commit: concurrent callers' items are written in one transaction.

While one batch is being written, new items queue up and go in the next one, so under load a
single transaction serves many messages (the database's per-transaction cost is paid once),
and with no load an item is written at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self, write: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_batch: int = 200
    ) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running is None:
            self._running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            # Give the callers that are already runnable a chance to join this batch.
            await asyncio.sleep(0)
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._write([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = None
            for _, future in self._pending:  # cancelled while items were waiting
                if not future.done() and self._running is None:
                    self._running = asyncio.create_task(self._drain())
                    break
