"""The way a message goes: dedup, deadline, conversation state across restarts."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient

from bot.dispatch import ConversationState, Router
from bot.dispatch.filters import prefix, words
from handlers.app import init_app
from tests.conftest import AppFactory, make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.support import wechat

Client = TestClient[Any, Any]


def counting_router(delay: float) -> tuple[Router, list[str]]:
    """A handler that takes ``delay`` seconds and records every run."""
    router = Router("slow")
    runs: list[str] = []

    @router.command(words("慢慢来"))
    async def slow(message: Any) -> str:
        runs.append(message.dedup_key)
        await asyncio.sleep(delay)
        return f"第{len(runs)}次处理完成"

    return router, runs


async def test_same_message_three_times_at_once_runs_handler_once(
    aiohttp_client: Any, db_url: str
) -> None:
    router, runs = counting_router(0.3)
    client = await aiohttp_client(init_app(make_config(db_url), extra_routers=[router]))
    xml = wechat.text_xml("o_dup", "慢慢来", 777001)
    signed = [wechat.mp_aes("/wechat/mp", xml) for _ in range(3)]  # retries: same MsgId

    async def send(s: wechat.Signed) -> str:
        resp = await client.post(s.path, data=s.body)
        assert resp.status == 200
        return str(wechat.decrypt_reply(await resp.text())["Content"])

    answers = await asyncio.gather(*(send(s) for s in signed))
    assert runs == ["777001"]
    assert answers == ["第1次处理完成"] * 3


async def test_retry_after_the_answer_gets_the_same_reply(aiohttp_client: Any, db_url: str) -> None:
    router, runs = counting_router(0)
    client = await aiohttp_client(init_app(make_config(db_url), extra_routers=[router]))
    xml = wechat.text_xml("o_dup2", "慢慢来", 777002)
    first = await _post(client, (wechat.mp_plain("/wechat/mp", xml)))
    second = await _post(client, (wechat.mp_plain("/wechat/mp", xml)))
    assert len(runs) == 1
    assert (
        xmltodict.parse(await first.text())["xml"]["Content"]
        == xmltodict.parse(await second.text())["xml"]["Content"]
    )


async def test_retry_on_a_second_instance_does_not_run_again(
    aiohttp_client: Any, db_url: str
) -> None:
    router_a, runs_a = counting_router(0.3)
    router_b, runs_b = counting_router(0.3)
    a = await aiohttp_client(init_app(make_config(db_url), extra_routers=[router_a]))
    b = await aiohttp_client(init_app(make_config(db_url), extra_routers=[router_b]))
    xml = wechat.text_xml("o_two", "慢慢来", 777003)
    ra, rb = await asyncio.gather(
        _post(a, (wechat.mp_plain("/wechat/mp", xml))),
        _post(b, (wechat.mp_plain("/wechat/mp", xml))),
    )
    assert len(runs_a) + len(runs_b) == 1
    texts = {await ra.text(), await rb.text()}
    contents = {xmltodict.parse(t)["xml"]["Content"] for t in texts if t != "success"}
    assert contents == {"第1次处理完成"}


async def test_slow_handler_answers_success_and_sends_later(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    # Far past the budget: a loop stalled by a garbage collection in a busy test process must
    # not let the handler finish before the deadline is noticed.
    router, runs = counting_router(2.0)
    base = fake_wechat.base_url
    config = make_config(db_url, api_base=base, bot__handler_budget_seconds=0.2)
    client = await aiohttp_client(init_app(config, extra_routers=[router]))
    resp = await _post(
        client, wechat.mp_aes("/wechat/mp", wechat.text_xml("o_late", "慢慢来", 777004))
    )
    assert resp.status == 200
    assert await resp.text() == "success"
    for _ in range(100):
        sent = fake_wechat.sent("/cgi-bin/message/custom/send")
        if sent:
            break
        await asyncio.sleep(0.05)
    assert len(sent) == 1
    assert sent[0].json["touser"] == "o_late"
    assert sent[0].json["text"]["content"] == "第1次处理完成"
    assert runs == ["777004"]


async def test_conversation_state_survives_a_restart(make_client: AppFactory) -> None:
    first = await make_client()
    resp = await first.post("/dev/chat", json={"user_id": "w1", "text": "留言"})
    assert "请直接输入您想对工会说的话" in (await resp.json())["replies"][0]["text"]
    await first.close()

    second = await make_client()  # a new app on the same database
    resp = await second.post("/dev/chat", json={"user_id": "w1", "text": "食堂饭菜太贵了"})
    assert "收到您的留言：「食堂饭菜太贵了」" in (await resp.json())["replies"][0]["text"]


def note_taking_router() -> tuple[Router, list[str], asyncio.Event]:
    """A handler that reads the conversation state, awaits, then writes it: the shape of a
    race. The first note waits (up to a second) for a handler of the same conversation to
    start meanwhile, which only happens when two messages of one conversation overlap."""
    router = Router("notes")
    runs: list[str] = []
    first_started = asyncio.Event()
    overlapped = asyncio.Event()

    @router.command(prefix("记下"))
    async def note(args: str, state: ConversationState) -> str:
        seen = list(state.data.get("notes", []))
        runs.append(f"{args} starts, seeing {seen}")
        if first_started.is_set():
            overlapped.set()
        else:
            first_started.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(overlapped.wait(), 1.0)
        state.update(notes=[*seen, args])
        runs.append(f"{args} ends")
        return "已记下：" + "、".join([*seen, args])

    return router, runs, first_started


async def test_two_messages_of_one_user_are_handled_in_order(
    aiohttp_client: Any, db_url: str
) -> None:
    router, runs, first_started = note_taking_router()
    client = await aiohttp_client(init_app(make_config(db_url), extra_routers=[router]))

    async def send(text: str, message_id: str) -> str:
        body = {"user_id": "w2", "text": text, "message_id": message_id}
        resp = await client.post("/dev/chat", json=body)
        return str((await resp.json())["replies"][0]["text"])

    first = asyncio.create_task(send("记下 加班费", "m1"))
    # The second message arrives while the first one's handler is in the middle of its work.
    await asyncio.wait_for(first_started.wait(), 5.0)
    second = asyncio.create_task(send("记下 食堂", "m2"))
    assert await asyncio.gather(first, second) == ["已记下：加班费", "已记下：加班费、食堂"]
    # One after the other, in arrival order, each handler run once: the second sees the
    # state the first saved, rather than starting on the same state and being run again.
    assert runs == [
        "加班费 starts, seeing []",
        "加班费 ends",
        "食堂 starts, seeing ['加班费']",
        "食堂 ends",
    ]


async def test_feedback_card_reaches_the_cadre_group_with_phone_masked(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    base = fake_wechat.base_url
    client = await aiohttp_client(init_app(make_config(db_url, api_base=base)))
    await client.post("/dev/chat", json={"user_id": "w3", "text": "给工会留言"})
    await client.post("/dev/chat", json={"user_id": "w3", "text": "我电话13812345678，欠薪了"})
    for _ in range(100):
        cards = fake_wechat.sent("/cgi-bin/webhook/send")
        if cards:
            break
        await asyncio.sleep(0.05)
    assert len(cards) == 1
    content = cards[0].json["markdown"]["content"]
    assert "138****5678" in content and "13812345678" not in content


async def _post(client: Client, signed: wechat.Signed) -> Any:
    return await client.post(signed.path, data=signed.body)
