"""Submission numbers: per form and Beijing day, from the database, unique across instances."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

from bot import keys
from bot.render import CHINA
from handlers.app import init_app
from handlers.forms.numbering import format_number, next_seq
from tests.conftest import make_config
from tests.forms.chat import MEDICINE, SERVICE_REPAIR, Client, Clock, fill, number_in, say


async def test_two_instances_submitting_at_once_get_distinct_numbers(
    aiohttp_client: Any, db_url: str
) -> None:
    clock = Clock()
    config = make_config(db_url)
    a: Client = await aiohttp_client(init_app(config, clock=clock))
    b: Client = await aiohttp_client(init_app(config, clock=clock))
    users = [(a if n % 2 else b, f"u{n}") for n in range(6)]
    for client, user in users:
        await say(client, "我要买药", user=user)
        await fill(client, MEDICINE, user=user)
    replies = await asyncio.gather(*(say(c, "确认", user=u) for c, u in users))
    numbers = sorted(number_in(r) for r in replies)
    day = clock().astimezone(CHINA).date()
    assert numbers == [format_number("药", day, n) for n in range(1, 7)]

    # Another form counts on its own; the next day starts again at 0001.
    await say(a, "服务申请", user="s")
    await fill(a, SERVICE_REPAIR, user="s")
    assert number_in(await say(a, "确认", user="s")) == format_number("服", day, 1)
    clock.advance(days=1)
    await say(b, "买药", user="u0")
    await fill(b, MEDICINE, user="u0")
    assert number_in(await say(b, "确认", user="u0")) == format_number(
        "药", day + timedelta(days=1), 1
    )


async def test_concurrent_counter_bumps_never_repeat(aiohttp_client: Any, db_url: str) -> None:
    # Many transactions at once, from two engines (two instances), straight at the counter.
    apps = [await aiohttp_client(init_app(make_config(db_url))) for _ in range(2)]
    day = date(2026, 11, 22)

    async def bump(n: int) -> int:
        sessions = apps[n % 2].app[keys.SERVICES].sessions
        async with sessions.begin() as session:
            return await next_seq(session, "medicine", day)

    values = await asyncio.gather(*(bump(n) for n in range(30)))
    assert sorted(values) == list(range(1, 31))
