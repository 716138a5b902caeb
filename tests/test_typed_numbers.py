"""Numbers as phones type them: input methods offer ①②③ (and ⓵ ❶ ➀) to a worker choosing a
menu item, keyboards give full-width １２３, and counts come in Chinese numerals (两盒, 三个月).
Each is read as the number it is, wherever a number is asked; none of them is an error."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SERVICES
from bot.text import as_choice, as_number, chinese_number, fold_digits, read_count
from handlers.app import init_app
from handlers.cases.models import Case
from handlers.knowledge.chat import load_kb
from tests.cases.test_case_loop import CS, cadre_says, wait_for, worker_says
from tests.conftest import make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.forms.chat import say
from tests.support import wechat
from tests.test_knowledge_chat import CONTENT
from tests.test_work_and_aibot import aibot_text

Client = TestClient[Any, Any]
_ids = itertools.count(7_700_000)


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("①", 1),
        ("⓶", 2),
        ("⓿", 0),
        ("❸", 3),
        ("➃", 4),
        ("፪", 2),
        ("᧚", 1),
        ("١٢", 12),
        ("１２３", 123),
        ("⑩", 10),
        (" 7 ", 7),
    ],
)
def test_digits_of_every_kind_are_numbers(typed: str, number: int) -> None:
    assert as_number(typed) == number


def test_what_is_not_a_number_stays_text() -> None:
    assert fold_digits("工资3个月没发") == "工资3个月没发"
    assert fold_digits("⓶号楼") == "2号楼"
    assert fold_digits("½") == "½" and fold_digits("一二") == "一二"
    assert as_number("") is None and as_number("1a") is None and as_number("Ⓐ") is None
    # int() refuses strings of more than 4,300 digits; no choice has more than nine.
    assert as_number("1" * 5000) is None
    assert as_choice("④", 3) is None and as_choice("③", 3) == 3


@pytest.mark.parametrize(
    ("typed", "count"),
    [
        ("两盒", 2),
        ("三个月", 3),
        ("十五个", 15),
        ("二十", 20),
        ("一百零五", 105),
        ("一百盒", 100),
        ("３盒", 3),
        ("⓷瓶", 3),
        ("12", 12),
    ],
)
def test_counts_in_digits_or_chinese_numerals(typed: str, count: int) -> None:
    assert read_count(typed) == count


def test_what_is_not_a_count() -> None:
    assert chinese_number("二三") is None and chinese_number("十十") is None
    assert chinese_number("一万二") is None and chinese_number("一百二") is None
    assert read_count("半盒") is None and read_count("1.5") is None
    assert read_count("很多") is None and read_count("3个大箱子") is None


async def test_menu_item_picked_with_a_circled_digit_on_every_channel(client: Client) -> None:
    menu = await say(client, "菜单", user="m1")
    line = next(x for x in menu.splitlines() if "联系工会" in x)
    typed = "⓵⓶⓷⓸⓹⓺⓻⓼⓽"[int(line.split(".")[0]) - 1]
    contact = "找对电话少跑腿"  # the contact item's reply
    assert contact in await say(client, typed, user="m1")

    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml("o_m2", typed, next(_ids)))
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    assert contact in wechat.decrypt_reply(await resp.text())["Content"]

    xml = wechat.text_xml("m3", typed, next(_ids), to=wechat.WORK_CORP_ID, agent=1000002)
    signed = wechat.work_encrypted("/wechat/work", xml)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    reply = wechat.decrypt_reply(
        await resp.text(), wechat.WORK_AES_KEY, wechat.WORK_CORP_ID, wechat.WORK_TOKEN
    )
    assert contact in reply["Content"]

    signed = wechat.aibot_encrypted("/wechat/aibot", aibot_text(typed, "typed-1", chat=None))
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    assert contact in wechat.decrypt_aibot_reply(await resp.json())["stream"]["content"]


async def test_form_quantity_phone_and_choice_typed_on_a_phone(client: Client) -> None:
    user = "f1"
    await say(client, "我要买药", user=user)
    await say(client, "张三", user=user)
    await say(client, "3号楼2单元501", user=user)
    assert "要几盒" in await say(client, "布洛芬", user=user)
    assert "需要处方吗" in await say(client, "⓷盒", user=user)
    assert "手机号" in await say(client, "否", user=user)
    assert "有多急" in await say(client, "１３８１２３４５６７８", user=user)
    assert "还有要交代的吗" in await say(client, "❷", user=user)
    summary = await say(client, "跳过", user=user)
    assert "数量：3盒" in summary and "联系电话：13812345678" in summary
    # 「修改 ④」 is line 4 of the summary, the quantity; a count in Chinese numerals answers it.
    assert "要几盒" in await say(client, "修改 ④", user=user)
    assert "数量：2盒" in await say(client, "两盒", user=user)


async def test_you_mean_pick_with_a_circled_digit(client: Client) -> None:
    kb = load_kb([CONTENT])
    text = next(
        t for t in ("仲裁", "合同", "加班", "社保", "会费") if kb.search(t).decision == "choose"
    )
    second = kb.search(text).candidates[1].entry
    assert "您是想问" in await say(client, text, user="k1")
    picked = await say(client, "⓶", user="k1")
    assert second.source.split("；")[0] in picked


async def test_followup_answered_with_a_circled_digit(client: Client) -> None:
    await say(client, "工资一直不发怎么办", user="k2")
    refined = await say(client, "❷", user="k2")  # 2: has left the job
    assert "依据：" in refined and "请回复数字选择服务" not in refined


async def test_cadre_command_and_worker_rating_with_circled_digits(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client: Client = await aiohttp_client(
        init_app(make_config(db_url, api_base=fake_wechat.base_url))
    )
    assert "工单号 #1" in await worker_says(client, "转人工", user="o_rate")
    assert "已结案" in await cadre_says(client, "#⓵ 结案 已电话沟通")
    closing = (await wait_for(fake_wechat, CS))[0].json["text"]["content"]
    assert "满意" in closing
    # 3 is 不满意: the worker is told how to complain.
    assert "抱歉没让您满意" in await worker_says(client, "⓷", user="o_rate")
    async with client.app[SERVICES].sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.status, case.satisfaction) == ("closed", 3)
