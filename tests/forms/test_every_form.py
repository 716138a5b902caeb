"""What every built-in form must do: start by its keyword, survive a restart between two
answers, re-ask a wrong answer, go back, and leave on 取消."""

from __future__ import annotations

import pytest

from tests.conftest import AppFactory
from tests.forms.chat import (
    ENROLMENT,
    LEGAL_AID,
    MEDICINE,
    SERVICE_REPAIR,
    Client,
    fill,
    mp_say,
    number_in,
    say,
)
from tests.support import wechat

FORMS = {
    # keyword, answers, prefix, (step of a wrong answer, the wrong answer, the re-ask)
    "medicine": ("我要买药", MEDICINE, "药", (5, "1380000", "手机号应为11位数字")),
    "service": ("服务申请", SERVICE_REPAIR, "服", (3, "12345", "手机号应为11位数字")),
    "enrolment": ("申请入会", ENROLMENT, "会", (3, "飞行员", "请回复序号选择")),
    "legal_aid": ("申请法律援助", LEGAL_AID, "法", (4, "上周", "没看懂这个日期")),
}


@pytest.mark.parametrize("form", sorted(FORMS))
async def test_every_form_survives_a_restart(make_client: AppFactory, form: str) -> None:
    keyword, answers, prefix, (step, wrong, reask) = FORMS[form]
    first = await make_client()
    await say(first, keyword, user=f"r-{form}")
    await fill(first, answers[:step], user=f"r-{form}")
    await first.close()

    second = await make_client()  # a new app on the same database
    assert reask in await say(second, wrong, user=f"r-{form}")
    await say(second, answers[step], user=f"r-{form}")
    back = await say(second, "上一步", user=f"r-{form}")
    assert "原来填的是" in back
    summary = await fill(second, answers[step:], user=f"r-{form}")
    assert "请核对" in summary
    assert number_in(await say(second, "确认", user=f"r-{form}")).startswith(f"{prefix}-")


@pytest.mark.parametrize("form", sorted(FORMS))
async def test_every_form_can_be_cancelled(client: Client, form: str) -> None:
    keyword, answers, _, _ = FORMS[form]
    await say(client, keyword, user=f"c-{form}")
    await fill(client, answers[:2], user=f"c-{form}")
    assert "已取消" in await say(client, "取消", user=f"c-{form}")
    assert "请核对" not in await fill(client, answers[2:], user=f"c-{form}")
    assert "还没有提交过" in await say(client, "我的申请", user=f"c-{form}")


async def test_a_picture_in_the_middle_of_a_form_gets_the_question_again(
    client: Client,
) -> None:
    await mp_say(client, "我要买药", user="o_pic")
    signed = wechat.mp_plain("/wechat/mp", wechat.other_xml("o_pic", "image", 920_001))
    resp = await client.post(signed.path, data=signed.body)
    text = await resp.text()
    assert "请用文字回复" in text and "怎么称呼" in text
