"""Per-conversation locks: one message of a conversation at a time, in arrival order, and a
worker whose request was cancelled while waiting does not hold up the next one."""

from __future__ import annotations

import asyncio

from bot.locks import KeyedLocks


async def test_holders_of_one_key_take_turns_in_order_and_other_keys_do_not_wait() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def holder(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(holder("a", "1"), holder("a", "2"), holder("a", "3"), holder("b", "x"))
    assert [o for o in order if o[0] != "x"] == ["1 in", "1 out", "2 in", "2 out", "3 in", "3 out"]
    assert order.index("x in") < order.index("1 out")  # another key never waited
    assert len(locks) == 0  # nothing is kept once nobody holds or waits


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    locks = KeyedLocks()
    first_in = asyncio.Event()
    release = asyncio.Event()
    got: list[str] = []

    async def first() -> None:
        async with locks.hold("k"):
            first_in.set()
            await release.wait()

    async def waiter(name: str) -> None:
        async with locks.hold("k"):
            got.append(name)

    holding = asyncio.create_task(first())
    await first_in.wait()
    cancelled = asyncio.create_task(waiter("cancelled"))
    later = asyncio.create_task(waiter("later"))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(holding, later)
    assert cancelled.cancelled()
    assert got == ["later"] and len(locks) == 0


async def test_an_error_inside_releases_the_lock() -> None:
    locks = KeyedLocks()
    try:
        async with locks.hold("k"):
            raise RuntimeError("handler failed")
    except RuntimeError:
        pass
    async with locks.hold("k"):
        assert len(locks) == 1
    assert len(locks) == 0
