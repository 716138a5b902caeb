"""When the database goes away, callers get a clear answer and WeChat is asked to retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handlers.app import init_app
from tests.conftest import make_config
from tests.support import wechat

# Nothing listens on port 1: the database is "gone".
GONE = "postgresql+asyncpg://postgres@127.0.0.1:1/unionbot"


async def test_readyz_says_the_database_is_down(aiohttp_client: Any) -> None:
    client = await aiohttp_client(init_app(make_config(GONE)))
    assert (await client.get("/healthz")).status == 200  # the process itself is alive
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["database"] == "down"


async def test_dev_chat_gets_a_clear_error(aiohttp_client: Any) -> None:
    client = await aiohttp_client(init_app(make_config(GONE)))
    resp = await client.post("/dev/chat", json={"user_id": "u", "text": "你好"})
    assert resp.status == 503
    assert "try again" in (await resp.json())["error"]


async def test_wechat_callback_is_not_acknowledged_so_it_is_retried(aiohttp_client: Any) -> None:
    # Answering 200 "success" would make WeChat drop the message; a 503 makes it retry.
    client = await aiohttp_client(init_app(make_config(GONE)))
    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_db", "你好", 880001))
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 503


async def test_sqlite_errors_of_the_message_store_get_the_same_clear_error(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # The message store hands its statements to the sqlite3 driver; an error there (here:
    # a database file nobody has migrated) is answered like any other database error.
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    client = await aiohttp_client(init_app(make_config(url)))
    resp = await client.post("/dev/chat", json={"user_id": "u", "text": "你好"})
    assert resp.status == 503
    assert "try again" in (await resp.json())["error"]
