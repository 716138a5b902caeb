"""Helpers for the form tests: talk through the dev chat, the Official Account and the group
robot over real HTTP, and a clock the test moves."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient

from tests.fakes.wechat_server import FakeWeChat, Recorded
from tests.support import wechat

Client = TestClient[Any, Any]
WEBHOOK = "/cgi-bin/webhook/send"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
_msg_ids = itertools.count(910_000)

# One scripted run through each built-in form, answer by answer (valid answers only).
MEDICINE = [
    "张三",
    "3号楼2单元501",
    "布洛芬缓释胶囊 0.3g×20粒",
    "2",
    "否",
    "13812345678",
    "3",
    "跳过",
]
SERVICE_REPAIR = ["1", "宿舍3楼水龙头漏水", "幸福小区5号楼302", "13912345678", "周六上午"]
ENROLMENT = ["李四", "13700001111", "顺丰速运", "快递员", "朝阳区", "同意"]
LEGAL_AID = ["王五", "1", "某某物流公司", "12000", "2026年3月", "13600002222", "同意"]


@dataclass
class Clock:
    """A clock the test moves; it starts at the real time so rows the outbox stamps with the
    real time are due for it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def say(client: Client, text: str, user: str = "w1", chat: str | None = None) -> str:
    resp = await client.post("/dev/chat", json={"user_id": user, "text": text, "chat_id": chat})
    assert resp.status == 200, await resp.text()
    return "\n".join(r["text"] for r in (await resp.json())["replies"])


async def fill(
    client: Client, answers: Sequence[str], user: str = "w1", chat: str | None = None
) -> str:
    """Send each answer in turn; returns the last reply."""
    reply = ""
    for text in answers:
        reply = await say(client, text, user, chat)
    return reply


async def mp_say(client: Client, text: str, user: str = "o_worker") -> str:
    xml = wechat.text_xml(user, text, next(_msg_ids))
    signed = wechat.mp_plain("/wechat/mp", xml)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    return str(xmltodict.parse(await resp.text())["xml"]["Content"])


async def mp_click(client: Client, key: str, user: str = "o_worker") -> str:
    # Events are deduplicated by sender and CreateTime: two clicks need two times.
    created = int(time.time()) + next(_msg_ids) % 100_000
    signed = wechat.mp_plain("/wechat/mp", wechat.event_xml(user, "CLICK", key, created=created))
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    return str(xmltodict.parse(await resp.text())["xml"]["Content"])


async def group_mention(client: Client, text: str, user: str, chat: str) -> str:
    """An @-mention of the intelligent robot in a WeCom group."""
    payload = {
        "msgid": f"am-{next(_msg_ids)}",
        "aibotid": "AIBOTID",
        "chattype": "group",
        "chatid": chat,
        "from": {"userid": user},
        "response_url": "http://127.0.0.1:9/resp",
        "msgtype": "text",
        "text": {"content": f"@工会小助手 {text}"},
    }
    signed = wechat.aibot_encrypted("/wechat/aibot", payload)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    return str(wechat.decrypt_aibot_reply(await resp.json())["stream"]["content"])


async def wait_sent(
    fake: FakeWeChat,
    path: str,
    match: Callable[[Recorded], bool] = lambda r: True,
    count: int = 1,
    within: float = 5.0,
) -> list[Recorded]:
    """What arrived at ``path`` and matches, once ``count`` have (or ``within`` seconds)."""
    found: list[Recorded] = []
    for _ in range(int(within / 0.05)):
        found = [r for r in fake.sent(path) if match(r)]
        if len(found) >= count:
            break
        await asyncio.sleep(0.05)
    return found


def robot(key: str) -> Callable[[Recorded], bool]:
    return lambda r: r.query.get("key") == key


def number_in(text: str) -> str:
    """The submission number in a reply (药-20261122-0007)."""
    m = re.search(r"[\u4e00-\u9fff]-\d{8}-\d{4}", text)
    assert m is not None, text
    return m.group(0)


# Questions a worker might type in the middle of a form. The knowledge base's tuning moves, so
# a test takes the first one it answers outright instead of pinning one.
_QUESTIONS = (
    "会费交多少？",
    "干活伤了手算工伤吗",
    "老板拖了三个月工资咋整",
    "没签劳动合同能要双倍工资吗",
    "加班费怎么算",
    "送外卖的能入会吗",
)
_STATEMENTS = ("会费比例", "入会条件", "加班费计算", "试用期工资", "会费标准", "工伤赔偿标准")


def kb_question(marked: bool = True) -> tuple[str, str]:
    """A question the knowledge base answers (with a question mark or word, or without) and
    the source line of its answer."""
    from bot.config import PROJECT_ROOT
    from handlers.knowledge.chat import load_kb

    kb = load_kb([PROJECT_ROOT / "content"])
    for text in _QUESTIONS if marked else _STATEMENTS:
        match = kb.search(text)
        if match.decision == "answer" and match.entry is not None:
            return text, match.entry.source
    raise AssertionError("the knowledge base answers none of the sample questions")
