"""HTTP that no WeChat server or gateway sends — compressed bodies, bodies cut short, requests
aiohttp itself cannot parse — gets a 4xx and at most one WARNING line: never a 500, never a
traceback at ERROR (anyone can send these, and an ERROR should mean a fault of ours), never a
"database unavailable"."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient

from handlers.app import init_app
from tests.conftest import make_config
from tests.support import wechat
from tests.test_work_and_aibot import aibot_text

Client = TestClient[Any, Any]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def _raw(host: str, port: int, data: bytes, *, hang_up: bool = False) -> bytes:
    """Send bytes on a fresh connection; the status line of the answer (or b"" on hang-up)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    if hang_up:
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.3)  # let the server notice
        return b""
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    return line


async def test_compressed_bodies_are_refused_on_every_channel(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    mp = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_gz", "你好", 71001))
    work = wechat.work_encrypted(
        "/wechat/work", wechat.text_xml("w_gz", "你好", 71002, to=wechat.WORK_CORP_ID)
    )
    aibot = wechat.aibot_encrypted("/wechat/aibot", aibot_text("a_gz", "你好"))
    for path in ("/dev/chat", mp.path, work.path, aibot.path):
        for encoding in ("gzip", "deflate", "br"):
            resp = await client.post(
                path, data=b"not what it says", headers={"Content-Encoding": encoding}
            )
            # br: aiohttp refuses it with a 400 before the app sees it (no Brotli installed)
            assert resp.status in ((400, 415) if encoding == "br" else (415,)), (path, encoding)
    # Unsigned, the same body is refused for its signature first; the unread body is drained.
    resp = await client.post("/wechat/mp", data=b"garbage", headers={"Content-Encoding": "gzip"})
    assert resp.status == 403
    await asyncio.sleep(0.2)
    assert _errors(caplog) == []


async def test_a_body_cut_short_is_not_called_a_database_outage(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Served as `unionbot serve` serves it: the test client's server cancels a handler whose
    # client hung up, the real one lets it run on and read the end of the body.
    runner = web.AppRunner(init_app(make_config(db_url)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        partial = b'{"user_id":'
        head = (
            f"POST /dev/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(partial) + 500}\r\n\r\n"
        ).encode()
        await _raw(host, port, head + partial, hang_up=True)
        assert _errors(caplog) == []
        # The service is fine: the next worker gets the menu.
        async with ClientSession() as http:
            resp = await http.post(
                f"http://{host}:{port}/dev/chat", json={"user_id": "after", "text": "你好"}
            )
            assert resp.status == 200
            assert "请回复数字选择服务" in (await resp.json())["replies"][0]["text"]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /dev/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"ZZ\r\nab\r\n0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
        b"POST /dev/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    ids=["bad-chunk-size", "20kb-header", "length-and-chunked"],
)
async def test_requests_the_server_cannot_parse_are_one_warning(
    client: Client, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    status = await _raw(client.server.host, client.server.port, request_bytes)
    assert status.startswith(b"HTTP/1.") and b" 400 " in status
    assert _errors(caplog) == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "aiohttp.server"]
    assert len(warnings) == 1 and "malformed request" in warnings[0]
    assert all(r.exc_info is None for r in caplog.records if r.name == "aiohttp.server")


async def test_another_senders_message_id_does_not_fetch_their_reply(client: Client) -> None:
    first = await client.post(
        "/dev/chat", json={"user_id": "alice", "text": "我要买药", "message_id": "m1"}
    )
    assert "怎么称呼您" in (await first.json())["replies"][0]["text"]
    # Another sender with the same id gets an answer to their own message.
    other = await client.post(
        "/dev/chat", json={"user_id": "bob", "text": "你好", "message_id": "m1"}
    )
    text = (await other.json())["replies"][0]["text"]
    assert "请回复数字选择服务" in text and "怎么称呼您" not in text
    # The same sender's retry is still recognised and answered with the stored reply.
    again = await client.post(
        "/dev/chat", json={"user_id": "alice", "text": "我要买药", "message_id": "m1"}
    )
    assert (await again.json())["replies"] == (await first.json())["replies"]
