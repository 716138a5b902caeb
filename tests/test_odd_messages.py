"""Messages that are no question: a lone 「。」「？」「……」「!!!」 or an empty text, a form's
words with no form being filled, a number that is no menu item. None of them throws away the
flow the worker is in, and none gets an article from the knowledge base."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cases.test_case_loop import APP, CS, cadre_says, start, wait_for, worker_says
from tests.fakes.wechat_server import FakeWeChat
from tests.forms.chat import Client, fill, say

NO_WORDS = ["。", "？", "?", "……", "!!!", ""]
MENU = "请回复数字选择服务"


@pytest.mark.parametrize("odd", NO_WORDS)
async def test_no_words_in_a_form_ask_the_question_again(client: Client, odd: str) -> None:
    await say(client, "我要买药")
    # Not an answer, not even to 「怎么称呼」: the question is asked again.
    first = await say(client, odd)
    assert "1/8 请问怎么称呼您" in first and MENU not in first
    assert "2/8 您住哪里" in await say(client, "张三")
    again = await say(client, odd)
    assert "2/8 您住哪里" in again and MENU not in again
    # The form is still there: the next answer is taken, and the name was kept.
    assert "3/8 要买什么药" in await say(client, "1号楼101")
    summary = await fill(client, ["布洛芬", "2", "否", "13812345678", "3", "跳过"])
    assert "姓名：张三" in summary and "住址：1号楼101" in summary


async def test_no_words_at_the_summary_show_the_summary_again(client: Client) -> None:
    await say(client, "我要买药")
    await fill(client, ["张三", "1号楼101", "布洛芬", "2", "否", "13812345678", "3", "跳过"])
    again = await say(client, "？")
    assert "请核对您的购药登记" in again and "回复「确认」提交" in again and MENU not in again
    assert "已提交" in await say(client, "确认")


async def test_no_words_during_a_case_go_to_the_cadre(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "老板拖了三个月工资")
    assert "工单号 #1" in await worker_says(client, "转人工")
    await wait_for(fake_wechat, APP)  # the cadre on duty is told of the new case
    # The bot stays quiet: no menu, and the case stays open …
    assert await worker_says(client, "……") == ""
    # … so what the worker writes next reaches the cadre, not the knowledge base.
    assert await worker_says(client, "我补充一下：老板欠我工资") == ""
    told = await wait_for(fake_wechat, APP, 3)
    assert "我补充一下：老板欠我工资" in told[-1].json["text"]["content"]
    assert "已发送" in await cadre_says(client, "#1 回复 收到，我们明天联系您。")
    pushed = (await wait_for(fake_wechat, CS))[0].json
    assert "我们明天联系您" in pushed["text"]["content"]


async def test_an_empty_message_while_leaving_a_note_keeps_the_note_open(client: Client) -> None:
    assert "请直接输入您想对工会说的话" in await say(client, "留言")
    assert "请直接输入您想对工会说的话" in await say(client, "")
    thanks = await say(client, "食堂的饭太贵了")
    assert "收到您的留言：「食堂的饭太贵了」" in thanks


@pytest.mark.parametrize("odd", NO_WORDS)
async def test_no_words_outside_a_flow_show_the_menu(client: Client, odd: str) -> None:
    assert MENU in await say(client, odd)


@pytest.mark.parametrize("word", ["确认", "提交", "上一步", "修改", "修改 2", "修改 电话"])
async def test_form_words_outside_a_form_say_there_is_none(client: Client, word: str) -> None:
    reply = await say(client, word)
    assert reply.startswith("现在没有正在填写的申请")
    assert "「菜单」" in reply and "「我的申请」" in reply and "依据" not in reply


@pytest.mark.parametrize("typed", ["+1", "-1", "½", "#1", "0", "99"])
async def test_a_number_that_is_no_menu_item_shows_the_menu(client: Client, typed: str) -> None:
    reply = await say(client, typed)
    assert reply.startswith("没有这个选项") and MENU in reply and "依据" not in reply
    # The menu's own numbers still work.
    line = next(x for x in reply.splitlines() if x.endswith("购药登记"))
    assert "怎么称呼" in await say(client, line.split(".")[0])
