"""A fake WeChat / WeCom API server on loopback, speaking the real request and response
shapes, with the real error codes injected on demand. Real HTTP: no mocks.

Run it alone for demos and benchmarks: ``python -m tests.fakes.wechat_server --port 8900``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APPID, APP_SECRET = "wx_test_app", "mp_secret"
CORPID, CORP_SECRET = "ww_test_corp", "work_secret"
AGENTID = 1000002

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    42001: "access_token expired",
    43004: "require subscribe",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    93000: "invalid webhook url",
}

TOKEN_PATHS = {"/cgi-bin/token", "/cgi-bin/gettoken"}
SEND_PATHS = {
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/send",
    "/cgi-bin/appchat/send",
}
WEBHOOK = "/cgi-bin/webhook/send"


@dataclass(frozen=True)
class Recorded:
    path: str
    query: dict[str, str]
    json: dict[str, Any]
    at: float


@dataclass
class _Faults:
    errcodes: deque[int] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    statuses: deque[int] = field(default_factory=deque)


class FakeWeChat:
    def __init__(
        self,
        robot_keys: tuple[str, ...] = ("robot-cadres", "robot-volunteers", "robot-group"),
        robot_rate: tuple[int, float] | None = None,
        verbose: bool = False,
    ) -> None:
        self.robot_keys = set(robot_keys)
        self.robot_rate = robot_rate  # (messages, seconds) per key, like WeCom's 20 / 60 s
        self.verbose = verbose
        self.tokens: set[str] = set()
        self.expired: set[str] = set()
        self.token_fetches = 0
        self._sent: list[Recorded] = []
        self._calls: Counter[str] = Counter()
        self._faults: dict[str, _Faults] = defaultdict(_Faults)
        self._robot_times: dict[str, deque[float]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ── what a test controls ───────────────────────────────────────────────────────────────

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        self._faults[path].errcodes.extend([errcode] * times)

    def delay_next(self, path: str, seconds: float, times: int = 1) -> None:
        self._faults[path].delays.extend([seconds] * times)

    def http_error_next(self, path: str, status: int, times: int = 1) -> None:
        self._faults[path].statuses.extend([status] * times)

    def expire_tokens(self) -> None:
        self.expired |= self.tokens
        self.tokens.clear()

    def sent(self, path: str | None = None) -> list[Recorded]:
        return [r for r in self._sent if path is None or r.path == path]

    def calls(self, path: str) -> int:
        return self._calls[path]

    # ── serving ────────────────────────────────────────────────────────────────────────────

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._mp_token)
        app.router.add_get("/cgi-bin/gettoken", self._work_token)
        for path in (*SEND_PATHS, WEBHOOK):
            app.router.add_post(path, self._send)
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        real_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{real_port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _inject(self, path: str) -> web.Response | None:
        self._calls[path] += 1
        faults = self._faults[path]
        if faults.delays:
            await asyncio.sleep(faults.delays.popleft())
        if faults.statuses:
            return web.Response(status=faults.statuses.popleft(), text="bad gateway")
        if faults.errcodes:
            return _error(faults.errcodes.popleft())
        return None

    async def _mp_token(self, request: web.Request) -> web.Response:
        injected = await self._inject(request.path)
        if injected is not None:
            return injected
        q = request.query
        if q.get("grant_type") != "client_credential" or q.get("appid") != APPID:
            return _error(40013, "invalid appid")
        if q.get("secret") != APP_SECRET:
            return _error(40125, "invalid appsecret")
        return web.json_response({"access_token": self._new_token(), "expires_in": 7200})

    async def _work_token(self, request: web.Request) -> web.Response:
        injected = await self._inject(request.path)
        if injected is not None:
            return injected
        q = request.query
        if q.get("corpid") != CORPID:
            return _error(40013, "invalid corpid")
        if q.get("corpsecret") != CORP_SECRET:
            return _error(40001, "invalid secret")
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": self._new_token(), "expires_in": 7200}
        )

    def _new_token(self) -> str:
        self.token_fetches += 1
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    async def _send(self, request: web.Request) -> web.Response:
        path = request.path
        injected = await self._inject(path)
        if injected is not None:
            return injected
        query = dict(request.query)
        if path == WEBHOOK:
            key = query.get("key", "")
            if key not in self.robot_keys:
                return _error(93000)
            if self.robot_rate is not None and not self._robot_allows(key):
                return _error(45009, "api freq out of limit")
        else:
            token = query.get("access_token", "")
            if token in self.expired:
                return _error(42001)
            if token not in self.tokens:
                return _error(40001)
        try:
            body = await request.json()
        except ValueError:
            return _error(44002, "empty post data")
        if not isinstance(body, dict) or ("msgtype" not in body and "template_id" not in body):
            return _error(40008, "invalid message type")
        self._sent.append(Recorded(path, query, body, time.time()))
        if self.verbose:
            print(path, body, flush=True)
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        if path == "/cgi-bin/message/send":
            answer.update(invaliduser="", msgid=secrets.token_hex(8))
        elif path == "/cgi-bin/message/template/send":
            answer["msgid"] = len(self._sent)
        return web.json_response(answer)

    def _robot_allows(self, key: str) -> bool:
        assert self.robot_rate is not None
        limit, window = self.robot_rate
        now = time.monotonic()
        times = self._robot_times[key]
        while times and now - times[0] >= window:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True


def _error(errcode: int, errmsg: str | None = None) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "")})


async def _serve(port: int) -> None:
    fake = FakeWeChat(verbose=True)
    print(f"fake WeChat API on {await fake.start(port)}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="fake WeChat / WeCom API on loopback")
    parser.add_argument("--port", type=int, default=8900)
    try:
        asyncio.run(_serve(parser.parse_args().port))
    except KeyboardInterrupt:
        pass
