"""A fake WeChat / WeCom API server on loopback: real HTTP, the real request and response
shapes, and the real error codes on demand. One server answers all three API families:

- Official Account (api.weixin.qq.com): ``/cgi-bin/token``, ``/cgi-bin/message/custom/send``,
  ``/cgi-bin/message/template/send``
- WeCom self-built app (qyapi.weixin.qq.com): ``/cgi-bin/gettoken``, ``/cgi-bin/message/send``,
  ``/cgi-bin/appchat/send``
- WeCom group robot: ``/cgi-bin/webhook/send?key=...``

Tests say what goes wrong next (``fail_next``, ``delay_next``, ``http_error_next``,
``expire_tokens``) and read what arrived (``sent``, ``calls``, ``token_fetches``).

Run it alone for demos and benchmarks::

    python -m tests.fakes.wechat_server --port 8900 [--quiet] [--robot-rate 20/60]

WeCom app messages sent with ``enable_duplicate_check`` are dropped, as by WeCom, when the
same request arrives again within the interval (``duplicates_dropped``); ``repeats`` counts
messages that reached a recipient twice all the same.

Out of process, ``GET /_fake/stats`` counts what arrived, ``POST /_fake/fault`` with
``{"path": ..., "errcode" | "delay" | "status": ..., "times": 1}`` injects a fault and
``POST /_fake/expire_tokens`` expires every token.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APPID, APP_SECRET = "wx_test_app", "mp_secret"
CORPID, CORP_SECRET = "ww_test_corp", "work_secret"
AGENTID = 1000002
ROBOT_KEYS = ("robot-cadres", "robot-volunteers", "robot-group")
TOKEN_TTL = 7200  # seconds, what WeChat answers in expires_in
SUPERSEDED_GRACE = 300.0  # an Official Account token still works this long after a new fetch

MP_TOKEN = "/cgi-bin/token"
WORK_TOKEN = "/cgi-bin/gettoken"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
APP_SEND = "/cgi-bin/message/send"
APPCHAT_SEND = "/cgi-bin/appchat/send"
WEBHOOK_SEND = "/cgi-bin/webhook/send"

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40037: "invalid template_id",
    40056: "invalid agentid",
    40125: "invalid appsecret",
    42001: "access_token expired",
    43004: "require subscribe",
    44004: "empty content",
    45009: "api freq out of limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    81013: "user & party & tag all invalid",
    86003: "chat not exist",
    93000: "invalid webhook url",
}
_OK = b'{"errcode":0,"errmsg":"ok"}'
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One accepted message: which endpoint, its query string, its JSON body, when."""

    path: str
    query: dict[str, str]
    json: dict[str, Any]
    at: float


@dataclass(slots=True)
class _Token:
    family: str  # "mp" or "work": a token of one is unknown to the other
    expires_at: float  # monotonic
    superseded: bool = False  # replaced by a newer fetch: "not latest" (40001) once it ends


@dataclass(slots=True)
class _Faults:
    # Each kind is its own queue: a call takes one of each that is pending, so a delay and
    # an errcode queued together make one slow failure.
    errcodes: deque[int] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    statuses: deque[int] = field(default_factory=deque)

    def __bool__(self) -> bool:
        return bool(self.errcodes or self.delays or self.statuses)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeWeChat:
    def __init__(
        self,
        *,
        robot_keys: Collection[str] = ROBOT_KEYS,
        robot_rate: tuple[int, float] | None = None,
        work_users: Collection[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        keep: int | None = None,
    ) -> None:
        """``robot_rate=(20, 60.0)`` answers 45009 beyond 20 messages a minute per robot key.
        ``work_users``, when given, are the only WeCom members: others come back in
        ``invaliduser``. ``keep`` bounds how many messages ``sent()`` remembers (benchmarks)."""
        self.robot_keys = frozenset(robot_keys)
        self.robot_rate = robot_rate
        self.work_users = None if work_users is None else frozenset(work_users)
        self.host, self.port = host, port
        self.verbose = verbose
        self.base_url = ""
        self.token_fetches = 0  # tokens handed out, by either family
        self._tokens: dict[str, _Token] = {}
        self._work_token: str | None = None
        self._serial = itertools.count(1)
        self._sent: deque[Recorded] = deque(maxlen=keep)
        self._accepted: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._faults: defaultdict[str, _Faults] = defaultdict(_Faults)
        # WeCom's duplicate check: the same request JSON within the interval is not delivered
        # again. Keyed by the canonical JSON, valued by when it was last delivered.
        self._duplicate_seen: dict[str, float] = {}
        self._duplicate_dropped: Counter[str] = Counter()
        # What reached each recipient, to count a message delivered twice: (path, to, text).
        self._deliveries: Counter[tuple[str, str, str]] = Counter()
        self._repeats: Counter[str] = Counter()
        self._robot_times: defaultdict[str, deque[float]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # ── what a test controls and reads ───────────────────────────────────────────────────

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` answer ``errcode`` (HTTP 200, as WeChat does)."""
        self._faults[_norm(path)].errcodes.extend([errcode] * times)

    def delay_next(self, path: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls wait ``seconds`` and are then handled as usual: a client
        that gave up meanwhile still had its message delivered, as with the real API."""
        self._faults[_norm(path)].delays.extend([seconds] * times)

    def http_error_next(self, path: str, status: int, times: int = 1) -> None:
        """The next ``times`` calls answer HTTP ``status`` with an HTML body, like a gateway."""
        self._faults[_norm(path)].statuses.extend([status] * times)

    def expire_tokens(self) -> None:
        """Every token handed out so far now answers 42001."""
        now = time.monotonic()
        for token in self._tokens.values():
            token.expires_at = min(token.expires_at, now)
        self._work_token = None

    def sent(self, path: str | None = None) -> list[Recorded]:
        if path is None:
            return list(self._sent)
        path = _norm(path)
        return [r for r in self._sent if r.path == path]

    def calls(self, path: str) -> int:
        """Every request to ``path``, failed ones included."""
        return self._calls[_norm(path)]

    def accepted(self, path: str) -> int:
        """Messages accepted at ``path``, including those ``keep`` no longer remembers."""
        return self._accepted[_norm(path)]

    def duplicates_dropped(self, path: str) -> int:
        """Sends WeCom's duplicate check answered ``ok`` without delivering them again."""
        return self._duplicate_dropped[_norm(path)]

    def repeats(self, path: str) -> int:
        """Messages delivered to a recipient who already had the very same one."""
        return self._repeats[_norm(path)]

    # ── serving ──────────────────────────────────────────────────────────────────────────

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_and_inject])
        app.router.add_get(MP_TOKEN, self._mp_token)
        app.router.add_get(WORK_TOKEN, self._work_token_handler)
        app.router.add_post(CUSTOM_SEND, self._custom_send)
        app.router.add_post(TEMPLATE_SEND, self._template_send)
        app.router.add_post(APP_SEND, self._app_send)
        app.router.add_post(APPCHAT_SEND, self._appchat_send)
        app.router.add_post(WEBHOOK_SEND, self._webhook_send)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_post("/_fake/fault", self._add_fault)
        app.router.add_post("/_fake/expire_tokens", self._expire_tokens)
        return app

    async def start(self) -> str:
        """Listen on ``host:port`` (a free port when 0); returns the base URL."""
        self._closing.clear()
        # A short shutdown: a delayed call still sleeping must not hold a test's teardown.
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.base_url = f"http://{self.host}:{site.port}"
        return self.base_url

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _count_and_inject(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_fake/"):
            return await handler(request)
        self._calls[path] += 1
        faults = self._faults.get(path)
        if faults:
            if faults.delays:
                delay = faults.delays.popleft()
                # The request has arrived in full before the server is slow to answer it.
                await request.read()
                try:
                    await asyncio.wait_for(self._closing.wait(), delay)
                except TimeoutError:
                    pass
            if faults.statuses:
                status = faults.statuses.popleft()
                return web.Response(status=status, text=_html(status), content_type="text/html")
            if faults.errcodes:
                return _error(faults.errcodes.popleft())
        return await handler(request)

    # ── tokens ───────────────────────────────────────────────────────────────────────────

    async def _mp_token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        if q.get("appid") != APPID:
            return _error(40013)
        if q.get("secret") != APP_SECRET:
            return _error(40125)
        now = time.monotonic()
        # A new Official Account token leaves the previous ones a few minutes to live.
        for old in self._tokens.values():
            if old.family == "mp" and not old.superseded:
                old.expires_at = min(old.expires_at, now + SUPERSEDED_GRACE)
                old.superseded = True
        token = self._issue("mp", now)
        return _json({"access_token": token, "expires_in": TOKEN_TTL})

    async def _work_token_handler(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("corpid") != CORPID:
            return _error(40013, "invalid corpid")
        if q.get("corpsecret") != CORP_SECRET:
            return _error(40001, "invalid secret")
        now = time.monotonic()
        # WeCom hands out the same token again while it is valid.
        token = self._work_token
        current = self._tokens.get(token) if token else None
        if token is None or current is None or current.expires_at <= now:
            token = self._work_token = self._issue("work", now)
            current = self._tokens[token]
        else:
            self.token_fetches += 1
        expires_in = max(0, int(current.expires_at - now))
        return _json(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in}
        )

    def _issue(self, family: str, now: float) -> str:
        self.token_fetches += 1
        token = f"{family}_token_{next(self._serial)}_{time.time_ns() % 1_000_000:06d}"
        self._tokens[token] = _Token(family, now + TOKEN_TTL)
        return token

    def _token_error(self, request: web.Request, family: str) -> web.Response | None:
        token = self._tokens.get(request.query.get("access_token", ""))
        if token is None or token.family != family:
            return _error(40001)
        if token.expires_at <= time.monotonic():
            return _error(40001 if token.superseded else 42001)
        return None

    # ── Official Account ─────────────────────────────────────────────────────────────────

    async def _custom_send(self, request: web.Request) -> web.Response:
        if (denied := self._token_error(request, "mp")) is not None:
            return denied
        body = await _body(request)
        if body is None:
            return _error(47001)
        if not body.get("touser"):
            return _error(40003)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "image", "news", "mpnews", "miniprogrampage", "menu"):
            return _error(40008)
        if msgtype == "text" and not _content(body, "text"):
            return _error(44004)
        self._record(request, body)
        return _ok()

    async def _template_send(self, request: web.Request) -> web.Response:
        if (denied := self._token_error(request, "mp")) is not None:
            return denied
        body = await _body(request)
        if body is None or not isinstance(body.get("data", {}), dict):
            return _error(47001)
        if not body.get("touser"):
            return _error(40003)
        if not body.get("template_id"):
            return _error(40037)
        self._record(request, body)
        return _json({"errcode": 0, "errmsg": "ok", "msgid": next(self._serial)})

    # ── WeCom app ────────────────────────────────────────────────────────────────────────

    async def _app_send(self, request: web.Request) -> web.Response:
        if (denied := self._token_error(request, "work")) is not None:
            return denied
        body = await _body(request)
        if body is None:
            return _error(47001)
        if body.get("agentid") != AGENTID:
            return _error(40056)
        if (refused := _check_work_message(body)) is not None:
            return refused
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        if not users and not body.get("toparty") and not body.get("totag"):
            return _error(81013)
        invalid = [] if self.work_users is None else [u for u in users if u not in self.work_users]
        if users and len(invalid) == len(users):
            return _error(81013)
        if self._duplicate(request.path, body):
            self._duplicate_dropped[request.path] += 1
        else:
            self._record(request, body)
        return _json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "invaliduser": "|".join(invalid),
                "msgid": f"msg{next(self._serial):08d}",
            }
        )

    async def _appchat_send(self, request: web.Request) -> web.Response:
        if (denied := self._token_error(request, "work")) is not None:
            return denied
        body = await _body(request)
        if body is None:
            return _error(47001)
        if not body.get("chatid"):
            return _error(86003)
        if (refused := _check_work_message(body)) is not None:
            return refused
        self._record(request, body)
        return _ok()

    # ── group robot ──────────────────────────────────────────────────────────────────────

    async def _webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if key not in self.robot_keys:
            return _error(93000)
        body = await _body(request)
        if body is None:
            return _error(47001)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "news", "image", "file", "template_card"):
            return _error(40008)
        if msgtype in ("text", "markdown") and not _content(body, msgtype):
            return _error(44004)
        if msgtype == "news" and not (body.get("news") or {}).get("articles"):
            return _error(44004, "empty articles")
        if self.robot_rate is not None and not self._robot_allows(key):
            return _error(45009)
        self._record(request, body)
        return _ok()

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

    # ── recording ────────────────────────────────────────────────────────────────────────

    def _duplicate(self, path: str, body: dict[str, Any]) -> bool:
        """WeCom's ``enable_duplicate_check``: "同样内容(请求json)的消息" within
        ``duplicate_check_interval`` seconds (default 1800, at most 4 hours) is not received
        again; the call still answers ok."""
        if body.get("enable_duplicate_check") != 1:
            return False
        interval = min(int(body.get("duplicate_check_interval") or 1800), 4 * 3600)
        key = path + json.dumps(body, ensure_ascii=False, sort_keys=True)
        now = time.monotonic()
        last = self._duplicate_seen.get(key)
        if last is not None and now - last < interval:
            return True
        self._duplicate_seen[key] = now
        return False

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        path = request.path
        self._accepted[path] += 1
        to = request.query.get("key") or body.get("touser") or body.get("chatid") or ""
        msgtype = str(body.get("msgtype") or "")
        part = body.get(msgtype)
        text = json.dumps(part, ensure_ascii=False, sort_keys=True)
        delivery = (path, str(to) or str(body.get("toparty") or ""), text)
        if self._deliveries[delivery]:
            self._repeats[path] += 1
        self._deliveries[delivery] += 1
        self._sent.append(Recorded(path, dict(request.query), body, time.time()))
        if self.verbose:
            line = json.dumps(body, ensure_ascii=False)
            print(f"{time.strftime('%H:%M:%S')} {path} → {to}: {line}", flush=True)

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(
            {
                "calls": dict(self._calls),
                "accepted": dict(self._accepted),
                "duplicates_dropped": dict(self._duplicate_dropped),
                "repeats": dict(self._repeats),
                "token_fetches": self.token_fetches,
            }
        )

    async def _add_fault(self, request: web.Request) -> web.Response:
        spec = await _body(request)
        if spec is None or not isinstance(spec.get("path"), str):
            return web.json_response({"error": "need path"}, status=400)
        path, times = spec["path"], int(spec.get("times", 1))
        if "errcode" in spec:
            self.fail_next(path, int(spec["errcode"]), times)
        elif "delay" in spec:
            self.delay_next(path, float(spec["delay"]), times)
        elif "status" in spec:
            self.http_error_next(path, int(spec["status"]), times)
        else:
            return web.json_response({"error": "need errcode, delay or status"}, status=400)
        return web.json_response({"ok": True})

    async def _expire_tokens(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"ok": True})


def _norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except ValueError:  # also bad UTF-8
        return None
    return body if isinstance(body, dict) else None


def _content(body: dict[str, Any], msgtype: str) -> bool:
    part = body.get(msgtype)
    return isinstance(part, dict) and bool(part.get("content"))


def _check_work_message(body: dict[str, Any]) -> web.Response | None:
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown", "textcard", "news", "image", "file", "template_card"):
        return _error(40008)
    if msgtype in ("text", "markdown") and not _content(body, msgtype):
        return _error(44004)
    return None


def _json(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(payload, ensure_ascii=False).encode(), content_type=_JSON)


def _ok() -> web.Response:
    return web.Response(body=_OK, content_type=_JSON)


def _error(errcode: int, errmsg: str | None = None) -> web.Response:
    return _json({"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "")})


def _html(status: int) -> str:
    return f"<html><body><h1>{status}</h1><p>fake gateway error</p></body></html>"


# ── standalone ───────────────────────────────────────────────────────────────────────────


def _rate(text: str) -> tuple[int, float]:
    count, _, seconds = text.partition("/")
    return int(count), float(seconds or 60)


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeWeChat(
        robot_keys=args.robot_key or ROBOT_KEYS,
        robot_rate=args.robot_rate,
        host=args.host,
        port=args.port,
        verbose=not args.quiet,
        keep=args.keep,
    )
    base = await fake.start()
    print(
        f"fake WeChat API on {base}\n"
        f"  Official Account appid={APPID} secret={APP_SECRET}\n"
        f"  WeCom corpid={CORPID} corpsecret={CORP_SECRET} agentid={AGENTID}\n"
        f"  robot keys: {', '.join(sorted(fake.robot_keys))}",
        flush=True,
    )
    # SIGTERM as well as Ctrl-C: a benchmark runs this in the background, where a shell
    # leaves SIGINT ignored.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        print(f"accepted: {dict(fake._accepted)}; token fetches: {fake.token_fetches}", flush=True)
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="fake WeChat / WeCom API server on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--robot-key", action="append", help="a webhook key (repeatable)")
    parser.add_argument("--robot-rate", type=_rate, help="per robot key, e.g. 20/60")
    parser.add_argument("--keep", type=int, default=1000, help="messages kept in memory")
    parser.add_argument("--quiet", action="store_true", help="do not print each message")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
