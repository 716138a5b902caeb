"""「修改 2」 or 「修改 电话」 typed while a question waits is a command, never an answer: it goes
back to a field already answered, or says that changes are made at the summary."""

from __future__ import annotations

from tests.forms.chat import SERVICE_REPAIR, Client, fill, say

LATER = "请先回答下面这一项；全部填完后，核对时每一项都可以修改。"


async def test_an_edit_of_what_is_not_answered_yet_is_not_stored(client: Client) -> None:
    await say(client, "我要买药")
    first = await say(client, "修改 2")
    assert first.startswith(LATER) and "1/8 请问怎么称呼您" in first
    assert "2/8 您住哪里" in await say(client, "张三")
    again = await say(client, "修改 电话")
    assert again.startswith(LATER) and "2/8 您住哪里" in again
    ask = await say(client, "修改")
    assert ask.startswith("要改前面哪一项？请回复「修改」加序号") and "2/8 您住哪里" in ask
    summary = await fill(client, ["3号楼2单元501", "布洛芬", "2", "否", "13812345678", "3", "跳过"])
    assert "姓名：张三" in summary and "住址：3号楼2单元501" in summary
    assert "修改" not in summary.split("没问题请回复")[0]


async def test_an_edit_of_an_answered_field_goes_back_to_it(client: Client) -> None:
    await say(client, "我要买药")
    await fill(client, ["张三", "3号楼2单元501"])
    edit = await say(client, "修改 1")
    assert "1/8 请问怎么称呼您" in edit and "原来填的是：张三" in edit and "不改了" in edit
    # The new answer replaces the old one, and the form goes on where it was.
    assert "3/8 要买什么药" in await say(client, "李四")
    assert "原来填的是：3号楼2单元501" in await say(client, "改 住址")
    assert "3/8 要买什么药" in await say(client, "上一步")  # not changed after all
    summary = await fill(client, ["布洛芬", "2", "否", "13812345678", "3", "跳过"])
    assert "姓名：李四" in summary and "住址：3号楼2单元501" in summary


async def test_a_description_that_starts_with_gai_is_an_answer(client: Client) -> None:
    await say(client, "服务申请")
    await say(client, SERVICE_REPAIR[0])
    assert "在哪里修" in await say(client, "改一下宿舍门锁")
    summary = await fill(client, SERVICE_REPAIR[2:])
    assert "情况说明：改一下宿舍门锁" in summary
