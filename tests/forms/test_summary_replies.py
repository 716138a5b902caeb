"""At a form's summary only 确认, 修改, 上一步 and 取消 do something. Anything else gets the
summary's instruction again, and a number is no question for the knowledge base."""

from __future__ import annotations

import pytest

from tests.forms.chat import SERVICE_REPAIR, Client, fill, kb_question, number_in, say

SUMMARY = "请核对您的服务申请"


async def at_summary(client: Client) -> None:
    await say(client, "服务申请")
    assert SUMMARY in await fill(client, SERVICE_REPAIR)


@pytest.mark.parametrize("typed", ["-1", "+1", "½", "#1", "好吗"])
async def test_what_is_not_a_summary_word_gets_the_instruction(client: Client, typed: str) -> None:
    await at_summary(client)
    reply = await say(client, typed)
    assert reply.startswith("请回复「确认」提交；要改哪项，回复「修改」加序号")
    assert SUMMARY in reply and "依据" not in reply
    assert number_in(await say(client, "确认")).startswith("服-")


@pytest.mark.parametrize("typed", ["1", "①", "1？"])
async def test_a_line_number_says_how_to_change_that_line(client: Client, typed: str) -> None:
    await at_summary(client)
    reply = await say(client, typed)
    assert reply.startswith("要改第1项，请回复「修改 1」；没问题请回复「确认」提交。")
    assert SUMMARY in reply and "依据" not in reply
    assert "您要申请哪项服务" in await say(client, "修改 1")


async def test_a_question_at_the_summary_is_still_answered(client: Client) -> None:
    question, source = kb_question(marked=True)
    await at_summary(client)
    reply = await say(client, question)
    assert f"依据：{source}" in reply and SUMMARY in reply
