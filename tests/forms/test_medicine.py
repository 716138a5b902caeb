"""购药登记 as a resident fills it in the dev chat: invalid answers, 上一步, 修改, 取消, a
question in the middle, and the card in the volunteers' group."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import keys
from handlers.app import init_app
from handlers.forms.models import FormStatusChange, FormSubmission
from tests.conftest import AppFactory, make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.forms.chat import (
    MEDICINE,
    WEBHOOK,
    Client,
    fill,
    kb_question,
    number_in,
    robot,
    say,
    wait_sent,
)


async def test_scripted_medicine_request_with_mistakes_back_and_edit(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client: Client = await aiohttp_client(
        init_app(make_config(db_url, api_base=fake_wechat.base_url))
    )
    first = await say(client, "我要买药")
    assert "24小时内送到" in first and "1/8 请问怎么称呼您" in first
    assert "「上一步」" in first and "「取消」" in first
    assert "2/8" in await say(client, "张三")
    reask = await say(client, "就在这")  # not an address
    assert "请写清楼号和房间号" in reask and "2/8" in reask
    assert "要买什么药" in await say(client, "3号楼2单元501")
    quantity = await say(client, "布洛芬缓释胶囊 0.3g×20粒")
    assert "「布洛芬缓释胶囊 0.3g×20粒」要几盒" in quantity  # the prompt is a template
    assert "1到20之间" in await say(client, "一百盒")
    assert "需要处方吗" in await say(client, "两盒")
    # Conditional field: only asked when a prescription is needed.
    assert "处方或病历" in await say(client, "是")
    back = await say(client, "上一步")
    assert "需要处方吗" in back and "原来填的是：是" in back
    assert "手机号" in await say(client, "否")  # no prescription: straight to the phone
    assert "手机号应为11位数字，请重新输入" in await say(client, "1381234")
    assert "有多急" in await say(client, "138 1234 5678")
    assert "请回复序号" in await say(client, "不知道")
    assert "还有要交代的吗" in await say(client, "很急")
    summary = await say(client, "跳过")
    assert "请核对您的购药登记" in summary
    assert "数量：2盒" in summary and "处方药：否" in summary and "已有处方" not in summary
    assert "联系电话：13812345678" in summary and "备注：（未填）" in summary
    # 修改 one answer at the summary, by its name or by its line number.
    edit = await say(client, "修改 电话")
    assert "手机号" in edit and "原来填的是：13812345678" in edit
    assert "联系电话：13912345678" in await say(client, "13912345678")
    assert "没有找到「血型」" in await say(client, "修改 血型")
    edit_by_number = await say(client, "修改 4")
    assert "要几盒" in edit_by_number
    assert "不改了" in edit_by_number
    assert "数量：2盒" in await say(client, "上一步")  # back out of the edit, unchanged
    done = await say(client, "确认")
    number = number_in(done)
    assert re.fullmatch(r"药-\d{8}-0001", number)
    assert "24小时内送到" in done

    # The volunteers' group gets a markdown card with the phone number masked.
    cards = await wait_sent(fake_wechat, WEBHOOK, robot("robot-volunteers"))
    assert len(cards) == 1
    card = cards[0].json
    assert card["msgtype"] == "markdown"
    content = card["markdown"]["content"]
    assert number in content and "布洛芬缓释胶囊" in content and "很急" in content
    assert "139****5678" in content and "13912345678" not in content

    services = client.app[keys.SERVICES]
    async with services.sessions() as session:
        sub = (await session.execute(select(FormSubmission))).scalar_one()
        changes = (await session.execute(select(FormStatusChange))).scalars().all()
    assert sub.number == number and sub.status == "submitted"
    assert sub.answers["phone"] == "13912345678" and sub.answers["quantity"] == 2
    assert sub.answers["prescription"] is False and "prescription_ready" not in sub.answers
    assert [c.to_status for c in changes] == ["submitted"]
    # After submitting, the conversation is free again.
    assert "请核对" not in await say(client, "你好")


async def test_cancel_leaves_the_form(client: Client) -> None:
    await say(client, "我要买药", user="c1")
    await say(client, "张三", user="c1")
    assert "已取消" in await say(client, "取消", user="c1")
    reply = await say(client, "3号楼2单元501", user="c1")
    assert "要买什么药" not in reply


async def test_back_at_the_first_question_stays_there(client: Client) -> None:
    await say(client, "买药", user="b1")
    reply = await say(client, "上一步", user="b1")
    assert "已经是第一项" in reply and "怎么称呼" in reply


async def test_a_question_in_the_middle_is_answered_and_the_form_asked_again(
    client: Client,
) -> None:
    question, source = kb_question(marked=True)
    statement, statement_source = kb_question(marked=False)
    await say(client, "我要买药", user="q1")
    # Text that would pass as a name, but it reads as a question: the knowledge base answers.
    reply = await say(client, question, user="q1")
    assert f"依据：{source}" in reply
    assert "我们接着填" in reply and "1/8 请问怎么称呼您" in reply
    await say(client, "张三", user="q1")
    await say(client, "3号楼2单元501", user="q1")
    await say(client, "布洛芬", user="q1")
    # An answer that does not fit and is a question without a question word is answered too …
    reply = await say(client, statement, user="q1")
    assert f"依据：{statement_source}" in reply and "要几盒" in reply
    assert "请回复1到20" not in reply
    # … and the form goes on where it was.
    assert "需要处方吗" in await say(client, "1", user="q1")
    # An answer that does not fit and is no question gets the re-ask.
    assert "请回复「是」或「否」" in await say(client, "随便", user="q1")


async def test_menu_item_starts_the_form(client: Client) -> None:
    menu = await say(client, "菜单", user="m1")
    line = next(x for x in menu.splitlines() if x.endswith("购药登记"))
    reply = await say(client, line.split(".")[0], user="m1")
    assert "怎么称呼" in reply


async def test_restart_between_two_answers_continues_where_it_was(
    make_client: AppFactory,
) -> None:
    first = await make_client()
    await say(first, "我要买药", user="r1")
    await fill(first, MEDICINE[:3], user="r1")
    await first.close()

    second = await make_client()  # a new app on the same database
    assert "需要处方吗" in await say(second, "2", user="r1")
    summary = await fill(second, MEDICINE[4:], user="r1")
    assert "姓名：张三" in summary and "数量：2盒" in summary
    assert number_in(await say(second, "确认", user="r1")).startswith("药-")


async def test_my_requests_lists_what_the_worker_submitted(client: Client) -> None:
    assert "还没有提交过" in await say(client, "我的申请", user="l1")
    await say(client, "我要买药", user="l1")
    await fill(client, MEDICINE, user="l1")
    number = number_in(await say(client, "确认", user="l1"))
    listing = await say(client, "我的申请", user="l1")
    assert number in listing and "购药登记" in listing and "已提交" in listing
    assert number not in await say(client, "我的申请", user="someone-else")
