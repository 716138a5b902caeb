"""The service on a real loopback port, served from a thread of its own, so that synchronous
test code (hypothesis, which runs an example at a time) can send it HTTP requests."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from bot.config import Config
from handlers.app import init_app


@dataclass
class Answer:
    status: int
    body: bytes


class LiveServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes = b"") -> Answer:
        """One request on a kept-alive connection (opened again when the server closed it)."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self._conn.request(method, path, body=body)
                response = self._conn.getresponse()
                return Answer(response.status, response.read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post(self, path: str, body: bytes) -> Answer:
        return self.request("POST", path, body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@contextmanager
def serve(config: Config) -> Iterator[LiveServer]:
    """Build the app from ``config`` and serve it on 127.0.0.1 until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(target=_run, args=(loop, ready), name="live-server", daemon=True)
    thread.start()
    ready.wait()

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(init_app(config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, int(runner.addresses[0][1])

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    server = LiveServer(port)
    try:
        yield server
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
